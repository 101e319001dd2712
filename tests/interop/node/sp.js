// Test-only SPID Service Provider built on @node-saml/node-saml, for the interop pair
// node-sp-to-our-idp. Routes: /metadata, /login (signed HTTP-Redirect AuthnRequest), /acs.
//
// Environment: SP_PORT, SP_KEY and SP_CERT (PEM files), IDP_METADATA_URL (our IdP's /metadata).
"use strict";
const fs = require("node:fs");
const http = require("node:http");
const crypto = require("node:crypto");
const { SAML, generateServiceProviderMetadata } = require("@node-saml/node-saml");
// Not re-exported from the package root, but it is node-saml's own metadata signer (the one
// signMetadata uses): needed because we add the AttributeConsumingService before signing.
const { signXmlMetadata } = require("@node-saml/node-saml/lib/utility");
const { DOMParser, XMLSerializer } = require("@xmldom/xmldom");
const xpath = require("xpath");

const MD = "urn:oasis:names:tc:SAML:2.0:metadata";
const TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
const LEVELS = { "https://www.spid.gov.it/SpidL1": 1, "https://www.spid.gov.it/SpidL2": 2, "https://www.spid.gov.it/SpidL3": 3 };
const ATTRIBUTES = ["spidCode", "name", "familyName", "fiscalNumber", "email", "dateOfBirth"];

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

// SP metadata: node-saml's generator, plus an AttributeConsumingService (index 0), which the
// generator cannot emit; then signed with node-saml's signer (RSA-SHA256, SHA-256 digest).
function spMetadata() {
  const xml = generateServiceProviderMetadata({
    ...signing,
    issuer: entityId,
    callbackUrl: acsUrl,
    identifierFormat: TRANSIENT,
    wantAssertionsSigned: true,
    publicCerts: publicCert,
    metadataOrganization: {
      OrganizationName: [{ "@xml:lang": "it", "#text": "node-saml interop test SP" }],
      OrganizationDisplayName: [{ "@xml:lang": "it", "#text": "node-saml interop test SP" }],
      OrganizationURL: [{ "@xml:lang": "it", "#text": base }],
    },
  });
  const doc = new DOMParser().parseFromString(xml, "text/xml");
  const spsso = doc.getElementsByTagNameNS(MD, "SPSSODescriptor")[0];
  const acs = doc.createElementNS(MD, "AttributeConsumingService");
  acs.setAttribute("index", "0");
  const name = doc.createElementNS(MD, "ServiceName");
  name.setAttribute("xml:lang", "it");
  name.appendChild(doc.createTextNode("node-saml interop test"));
  acs.appendChild(name);
  for (const a of ATTRIBUTES) {
    const r = doc.createElementNS(MD, "RequestedAttribute");
    r.setAttribute("Name", a);
    r.setAttribute("NameFormat", "urn:oasis:names:tc:SAML:2.0:attrname-format:basic");
    acs.appendChild(r);
  }
  spsso.appendChild(acs); // last child of SPSSODescriptor, after the AssertionConsumerService
  return signXmlMetadata(new XMLSerializer().serializeToString(doc), signing);
}

// Our IdP's metadata, fetched on first use (the IdP starts after this SP, since it needs our
// metadata). The signing certificate is read from the IDPSSODescriptor, never from a message.
async function loadIdp() {
  const res = await fetch(process.env.IDP_METADATA_URL);
  if (!res.ok) throw new Error(`IdP metadata: HTTP ${res.status}`);
  const doc = new DOMParser().parseFromString(await res.text(), "text/xml");
  const select = xpath.useNamespaces({ md: MD, ds: "http://www.w3.org/2000/09/xmldsig#" });
  const idpsso = "/md:EntityDescriptor/md:IDPSSODescriptor";
  const cert = select(`string(${idpsso}/md:KeyDescriptor[not(@use) or @use='signing']/ds:KeyInfo/ds:X509Data/ds:X509Certificate)`, doc).replace(/\s+/g, "");
  const sso = select(`string(${idpsso}/md:SingleSignOnService[@Binding='urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect']/@Location)`, doc);
  const idpEntityId = select("string(/md:EntityDescriptor/@entityID)", doc);
  if (!cert || !sso || !idpEntityId) throw new Error("IdP metadata lacks signing certificate, Redirect SSO or entityID");
  log(`IdP ${idpEntityId}: Redirect SSO ${sso}, signing cert sha256 ${crypto.createHash("sha256").update(Buffer.from(cert, "base64")).digest("hex").slice(0, 16)}…`);
  const saml = new SAML({
    ...signing,
    entryPoint: sso, // also the AuthnRequest Destination
    issuer: entityId,
    callbackUrl: acsUrl, // AssertionConsumerServiceURL (+ ProtocolBinding HTTP-POST, always set by node-saml)
    idpCert: cert,
    audience: entityId,
    identifierFormat: TRANSIENT,
    allowCreate: false, // node-saml cannot omit AllowCreate; "false" is the closest it gets
    authnContext: ["https://www.spid.gov.it/SpidL2"],
    racComparison: "minimum",
    forceAuthn: true,
    attributeConsumingServiceIndex: "0",
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: true,
    // Every Response must answer an AuthnRequest of ours, once (in-memory cache provider).
    validateInResponseTo: "always",
    requestIdExpirationPeriodMs: 5 * 60 * 1000,
    acceptedClockSkewMs: 3000,
  });
  return { saml, idpEntityId };
}

let idpPromise = null;
function idp() {
  idpPromise ??= loadIdp().catch((e) => {
    idpPromise = null; // retry on the next request
    throw e;
  });
  return idpPromise;
}

// The SPID checks node-saml 5.1.0 does not make: Assertion Issuer = our IdP, transient NameID,
// and the level obtained at least SpidL2 (Comparison minimum).
function spidChecks(profile, idpEntityId) {
  if (profile.issuer !== idpEntityId) throw new Error(`Assertion Issuer ${profile.issuer} is not ${idpEntityId}`);
  if (profile.nameIDFormat !== TRANSIENT) throw new Error(`NameID Format ${profile.nameIDFormat} is not transient`);
  const stmt = profile.getAssertion().Assertion.AuthnStatement;
  const ref = stmt?.[0]?.AuthnContext?.[0]?.AuthnContextClassRef?.[0];
  const classRef = typeof ref === "string" ? ref : ref?._;
  const level = LEVELS[classRef?.trim()];
  if (!level) throw new Error(`AuthnContextClassRef ${classRef} is not a SPID level`);
  if (level < 2) throw new Error(`level SpidL${level} is below the requested SpidL2 (minimum)`);
  return level;
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", ...headers });
  res.end(body);
}

async function readForm(req) {
  let body = "";
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 1 << 20) throw new Error("request body too large");
  }
  return Object.fromEntries(new URLSearchParams(body));
}

const server = http.createServer(async (req, res) => {
  const path = new URL(req.url, base).pathname;
  try {
    if (req.method === "GET" && path === "/metadata") {
      return send(res, 200, spMetadata(), { "Content-Type": "application/samlmetadata+xml" });
    }
    if (req.method === "GET" && path === "/login") {
      const { saml } = await idp();
      // Opaque RelayState (SPID: no URL in it).
      const url = await saml.getAuthorizeUrlAsync(crypto.randomBytes(16).toString("hex"), undefined, {});
      log("login: redirecting to", url.slice(0, 120) + "…");
      return send(res, 302, "", { Location: url });
    }
    if (req.method === "POST" && path === "/acs") {
      const { saml, idpEntityId } = await idp();
      const form = await readForm(req);
      try {
        const { profile } = await saml.validatePostResponseAsync(form);
        if (!profile) throw new Error("no profile in the Response");
        const level = spidChecks(profile, idpEntityId);
        const out = { nameID: profile.nameID, nameQualifier: profile.nameQualifier, level: `SpidL${level}`, attributes: profile.attributes ?? {} };
        log("acs: ACCEPTED", JSON.stringify(out));
        return send(res, 200, `login ok\n${JSON.stringify(out, null, 2)}\n`);
      } catch (e) {
        log("acs: REFUSED", e.message);
        return send(res, 403, `login refused: ${e.message}\n`);
      }
    }
    send(res, 404, "not found\n");
  } catch (e) {
    log(`${req.method} ${path}: error`, e.stack);
    send(res, 500, `error: ${e.message}\n`);
  }
});

server.listen(port, "127.0.0.1", () => log(`node-saml SP ${entityId} listening`));
// Exit at once: the pair script stops us with SIGTERM and keep-alive sockets must not delay it.
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
