// Test-only SPID-style Service Provider built on @node-saml/passport-saml + express, a check-sp
// target for tests/interop/pairs/check-sp-passport-saml.sh.
//
// Routes: /metadata (signed SP metadata), /login (signed AuthnRequest by HTTP-POST: an
// auto-submitting form), /acs (HTTP-POST: 200 with the NameID and attributes on an accepted
// login, 403 with the reason on any refusal).
//
// Configured as close to SPID as passport-saml's options allow: RSA-SHA256 request signature,
// RequestedAuthnContext SpidL2 Comparison minimum, NameIDPolicy transient, ForceAuthn,
// WantAssertionsSigned, InResponseTo always checked. What the library cannot write, the app adds
// as a SPID integrator would:
//   * the AuthnRequest's Issuer gets Format="...:entity" and NameQualifier (SPID requires both;
//     spid-sp-test reads the Audience of its Responses from that NameQualifier): node-saml's own
//     request generator is wrapped, the request is amended, then signed by node-saml's own
//     enveloped-signature signer (signAuthnRequestPost), as node-saml would have;
//   * the metadata gets an AttributeConsumingService (SPID attributes) and an "other"
//     ContactPerson with spid:IPACode/spid:Public, then is signed by node-saml's metadata signer.
// The only check added on top of the library's: the AuthnContextClassRef obtained must be a SPID
// level at least SpidL2 (node-saml does not judge the level it gets).
//
// Environment: SP_PORT, SP_KEY and SP_CERT (PEM files), IDP_METADATA (a file or URL).
"use strict";
const fs = require("node:fs");
const crypto = require("node:crypto");
const express = require("express");
const passport = require("passport");
const { Strategy: SamlStrategy } = require("@node-saml/passport-saml");
const { SAML } = require("@node-saml/node-saml");
// Not re-exported from the package root, but node-saml's own signers.
const { signXmlMetadata } = require("@node-saml/node-saml/lib/utility");
const { signAuthnRequestPost } = require("@node-saml/node-saml/lib/saml-post-signing");
const { DOMParser, XMLSerializer } = require("@xmldom/xmldom");
const xpath = require("xpath");

const MD = "urn:oasis:names:tc:SAML:2.0:metadata";
const SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion";
const SPID_NS = "https://spid.gov.it/saml-extensions";
const TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
const ENTITY = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity";
const LEVELS = { "https://www.spid.gov.it/SpidL1": 1, "https://www.spid.gov.it/SpidL2": 2, "https://www.spid.gov.it/SpidL3": 3 };
const ATTRIBUTES = ["spidCode", "name", "familyName", "fiscalNumber", "email"];

const port = Number(process.env.SP_PORT);
const base = `http://127.0.0.1:${port}`;
const entityId = `${base}/metadata`;
const acsUrl = `${base}/acs`;
const privateKey = fs.readFileSync(process.env.SP_KEY, "utf8");
const publicCert = fs.readFileSync(process.env.SP_CERT, "utf8");
const signing = { privateKey, publicCert, signatureAlgorithm: "sha256", digestAlgorithm: "sha256" };

function log(...a) {
  console.log(new Date().toISOString(), ...a);
}

// SPID Issuer on every AuthnRequest: node-saml builds the request (unsigned), we add Format and
// NameQualifier to its Issuer, then node-saml's POST signer signs it as it would have.
const generate = SAML.prototype.generateAuthorizeRequestAsync;
SAML.prototype.generateAuthorizeRequestAsync = async function (isPassive, isHttpPostBinding, ...rest) {
  const xml = await generate.call(this, isPassive, false, ...rest);
  const doc = new DOMParser().parseFromString(xml, "text/xml");
  const issuer = doc.getElementsByTagNameNS(SAML_NS, "Issuer")[0];
  issuer.setAttribute("Format", ENTITY);
  issuer.setAttribute("NameQualifier", this.options.issuer);
  const amended = new XMLSerializer().serializeToString(doc);
  return isHttpPostBinding ? signAuthnRequestPost(amended, this.options) : amended;
};

async function loadText(src) {
  if (/^https?:\/\//.test(src)) {
    const res = await fetch(src);
    if (!res.ok) throw new Error(`${src}: HTTP ${res.status}`);
    return res.text();
  }
  return fs.readFileSync(src, "utf8");
}

// The IdP's entity id, signing certificate and POST SSO endpoint, from its metadata.
function parseIdp(text) {
  const doc = new DOMParser().parseFromString(text, "text/xml");
  const select = xpath.useNamespaces({ md: MD, ds: "http://www.w3.org/2000/09/xmldsig#" });
  const idpsso = "/md:EntityDescriptor/md:IDPSSODescriptor";
  const cert = select(`string(${idpsso}/md:KeyDescriptor[not(@use) or @use='signing']/ds:KeyInfo/ds:X509Data/ds:X509Certificate)`, doc).replace(/\s+/g, "");
  const sso = select(`string(${idpsso}/md:SingleSignOnService[@Binding='urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST']/@Location)`, doc);
  const idpEntityId = select("string(/md:EntityDescriptor/@entityID)", doc);
  if (!cert || !sso || !idpEntityId) throw new Error("IdP metadata lacks signing certificate, POST SSO or entityID");
  return { cert, sso, idpEntityId };
}

// The SPID checks node-saml 5.1.0 does not make: the level obtained at least SpidL2.
function spidLevel(profile) {
  const stmt = profile.getAssertion().Assertion.AuthnStatement;
  const ref = stmt?.[0]?.AuthnContext?.[0]?.AuthnContextClassRef?.[0];
  const classRef = typeof ref === "string" ? ref : ref?._;
  const level = LEVELS[classRef?.trim()];
  if (!level) throw new Error(`AuthnContextClassRef ${classRef} is not a SPID level`);
  if (level < 2) throw new Error(`level SpidL${level} is below the requested SpidL2 (minimum)`);
  return level;
}

function spMetadata(strategy) {
  const xml = strategy.generateServiceProviderMetadata(null, publicCert);
  const doc = new DOMParser().parseFromString(xml, "text/xml");
  const root = doc.documentElement;
  const spsso = doc.getElementsByTagNameNS(MD, "SPSSODescriptor")[0];
  const acs = doc.createElementNS(MD, "md:AttributeConsumingService");
  acs.setAttribute("index", "0");
  const name = doc.createElementNS(MD, "md:ServiceName");
  name.setAttribute("xml:lang", "it");
  name.appendChild(doc.createTextNode("passport-saml interop test"));
  acs.appendChild(name);
  for (const a of ATTRIBUTES) {
    const r = doc.createElementNS(MD, "md:RequestedAttribute");
    r.setAttribute("Name", a);
    r.setAttribute("NameFormat", "urn:oasis:names:tc:SAML:2.0:attrname-format:basic");
    acs.appendChild(r);
  }
  spsso.appendChild(acs); // last child of SPSSODescriptor, after the AssertionConsumerService
  // Organization and ContactPerson follow the SPSSODescriptor (node-saml wrote Organization).
  const contact = doc.createElementNS(MD, "md:ContactPerson");
  contact.setAttribute("contactType", "other");
  const ext = doc.createElementNS(MD, "md:Extensions");
  ext.setAttribute("xmlns:spid", SPID_NS);
  const ipa = doc.createElementNS(SPID_NS, "spid:IPACode");
  ipa.appendChild(doc.createTextNode("c_h501"));
  ext.appendChild(ipa);
  ext.appendChild(doc.createElementNS(SPID_NS, "spid:Public"));
  contact.appendChild(ext);
  const email = doc.createElementNS(MD, "md:EmailAddress");
  email.appendChild(doc.createTextNode("interop@example.invalid"));
  contact.appendChild(email);
  root.appendChild(contact);
  return signXmlMetadata(new XMLSerializer().serializeToString(doc), signing);
}

function page(res, status, title, detail) {
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  res
    .status(status)
    .type("html")
    .send(`<!DOCTYPE html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body><h1>${esc(title)}</h1><pre id="detail">${esc(detail)}</pre></body></html>\n`);
}

async function main() {
  const { cert, sso, idpEntityId } = parseIdp(await loadText(process.env.IDP_METADATA));
  log(`IdP ${idpEntityId}: POST SSO ${sso}, signing cert sha256 ${crypto.createHash("sha256").update(Buffer.from(cert, "base64")).digest("hex").slice(0, 16)}…`);
  const strategy = new SamlStrategy(
    {
      ...signing,
      entryPoint: sso, // also the AuthnRequest Destination
      authnRequestBinding: "HTTP-POST",
      skipRequestCompression: true, // node-saml deflates by default, which the POST binding forbids
      issuer: entityId,
      callbackUrl: acsUrl,
      logoutCallbackUrl: `${base}/sls`, // published (SPID asks for one); logout is not implemented
      idpCert: cert,
      idpIssuer: idpEntityId, // node-saml 5.1.0 compares it with logout messages only, not Assertions
      audience: entityId,
      identifierFormat: TRANSIENT,
      allowCreate: false, // node-saml cannot omit AllowCreate; "false" is the closest it gets
      authnContext: ["https://www.spid.gov.it/SpidL2"],
      racComparison: "minimum",
      forceAuthn: true,
      attributeConsumingServiceIndex: "0",
      wantAssertionsSigned: true,
      wantAuthnResponseSigned: false, // SPID: the Assertion must be signed, the Response may be
      metadataOrganization: {
        OrganizationName: [{ "@xml:lang": "it", "#text": "passport-saml interop test SP" }],
        OrganizationDisplayName: [{ "@xml:lang": "it", "#text": "passport-saml interop test SP" }],
        OrganizationURL: [{ "@xml:lang": "it", "#text": base }],
      },
      // Every Response must answer an AuthnRequest of ours, once (in-memory cache provider).
      validateInResponseTo: "always",
      requestIdExpirationPeriodMs: 5 * 60 * 1000,
      acceptedClockSkewMs: 3000,
    },
    (profile, done) => {
      try {
        const level = spidLevel(profile);
        done(null, { nameID: profile.nameID, nameIDFormat: profile.nameIDFormat, nameQualifier: profile.nameQualifier, level: `SpidL${level}`, attributes: profile.attributes ?? {} });
      } catch (e) {
        done(null, false, { message: e.message });
      }
    },
    (_profile, done) => done(null, {}),
  );
  passport.use("saml", strategy);

  const app = express();
  app.use(passport.initialize());
  app.get("/metadata", (_req, res) => res.type("application/samlmetadata+xml").send(spMetadata(strategy)));
  // Opaque RelayState (SPID: not intelligible).
  app.get("/login", (req, res, next) => {
    req.body = { RelayState: crypto.randomBytes(16).toString("hex") }; // express 5: req.query is a getter
    passport.authenticate("saml", { session: false })(req, res, next);
  });
  app.post("/acs", express.urlencoded({ extended: false, limit: "1mb" }), (req, res) => {
    passport.authenticate("saml", { session: false }, (err, user, info) => {
      if (err) {
        log("acs: REFUSED", err.message);
        return page(res, 403, "login refused", err.message);
      }
      if (!user) {
        const why = info?.message ?? "not authenticated";
        log("acs: REFUSED", why);
        return page(res, 403, "login refused", why);
      }
      log("acs: ACCEPTED", JSON.stringify(user));
      return page(res, 200, "login ok", JSON.stringify(user, null, 2));
    })(req, res);
  });
  app.use((err, _req, res, _next) => {
    log("error:", err.stack);
    page(res, 500, "error", err.message);
  });
  app.listen(port, "127.0.0.1", () => log(`passport-saml SP ${entityId} listening`));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
// Exit at once: the pair script stops us with SIGTERM and keep-alive sockets must not delay it.
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
