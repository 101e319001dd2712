//! The one table of rule codes: every refusal the SP, the RP and our OP can return, with its
//! stable dotted code, the SPID reference and a summary.
//! Codes are API: never rename or reuse one.

use serde::{Serialize, Serializer};
use std::fmt;

macro_rules! rules {
    ($( $(#[$m:meta])* $variant:ident => $code:literal, $reference:literal, $summary:literal; )*) => {
        /// A rule that can refuse a message. `code()` is the stable identifier.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Rule {
            $( $(#[$m])* #[doc = $summary] $variant, )*
        }

        impl Rule {
            /// Every rule, in table order.
            pub const ALL: &'static [Rule] = &[ $( Rule::$variant, )* ];

            /// The stable dotted code, e.g. `assertion.level.insufficient`.
            pub fn code(self) -> &'static str {
                match self { $( Rule::$variant => $code, )* }
            }

            /// Where the rule comes from (SPID technical rules, Avvisi, upstream case ids).
            pub fn reference(self) -> &'static str {
                match self { $( Rule::$variant => $reference, )* }
            }

            /// One line saying what the rule requires.
            pub fn summary(self) -> &'static str {
                match self { $( Rule::$variant => $summary, )* }
            }
        }
    };
}

rules! {
    // Binding and transport.
    BindingMissingMessage => "binding.saml-response.missing", "SAML-BIND 3.5; SPID-RT SSO", "the POST carries a SAMLResponse parameter";
    BindingBase64 => "binding.base64.invalid", "SAML-BIND 3.5.4", "SAMLResponse is valid base64";
    BindingEncoding => "binding.encoding.invalid", "XML 1.0; SAML-BIND 3.5.4", "the decoded message is UTF-8";
    BindingTooLarge => "binding.message.too-large", "hardening", "the message is within the size bound";
    // XML.
    XmlMalformed => "xml.malformed", "XML 1.0; SAML-CORE", "the message is well-formed XML with declared prefixes";
    XmlDtd => "xml.dtd.forbidden", "SAML-CORE 1.3; spid-sp-test xxe", "no DOCTYPE (XXE, entity expansion)";
    XmlEntity => "xml.entity.forbidden", "SAML-CORE 1.3", "no entity references beyond the predefined five";
    XmlProcessingInstruction => "xml.pi.forbidden", "hardening", "no processing instructions";
    XmlLimits => "xml.limits.exceeded", "hardening", "depth, element and attribute counts are bounded";
    XmlComment => "xml.comment.forbidden", "hardening (comment truncation attacks)", "no comments inside the Assertion";
    // Structure and signatures.
    ResponseRoot => "response.root.invalid", "SAML-CORE 3.3.3", "the root element is samlp:Response";
    ResponseUnexpectedElement => "response.structure.unexpected", "SPID-RT SSO; spid-saml-check 112/113", "the Response holds only Issuer, Signature, Status and Assertion children";
    SignaturePlacement => "signature.placement.invalid", "SAML-CORE 5.4.1; xsw1-8", "a Signature is a direct child of Response or Assertion, right after Issuer";
    SignatureReference => "signature.reference.invalid", "SAML-CORE 5.4.2; xsw1-8", "each signature has one Reference whose URI is '#' + its parent's ID";
    SignatureTransform => "signature.transform.forbidden", "SAML-CORE 5.4.4; spid-sp-test xslt", "only enveloped-signature and exclusive c14n transforms";
    SignatureAlgorithm => "signature.algorithm.forbidden", "SPID-RT SSO (RSA-SHA256 or better)", "signature and digest algorithms are SHA-256 or stronger";
    SignatureAssertionMissing => "signature.assertion.missing", "SPID-RT SSO; spid-sp-test 2, 3", "the Assertion is signed";
    SignatureInvalid => "signature.invalid", "SPID-RT SSO; spid-sp-test 4, 5, 100", "every signature verifies with a certificate from the IdP metadata";
    SignatureNoTrustedCert => "signature.idp-certificate.missing", "hardening", "the IdP metadata provides a signing certificate";
    // Response.
    ResponseIdMissing => "response.id.missing", "SAML-CORE 3.2.2; spid-sp-test 8, 9", "Response ID present and non-empty";
    ResponseVersion => "response.version.invalid", "SAML-CORE 3.2.2; spid-sp-test 10", "Response Version is 2.0";
    ResponseIssueInstantMissing => "response.issue-instant.missing", "SPID-RT SSO; spid-sp-test 11, 12", "Response IssueInstant present";
    ResponseIssueInstantMalformed => "response.issue-instant.malformed", "SPID-RT SSO; spid-sp-test 13", "Response IssueInstant is a UTC xs:dateTime";
    ResponseIssueInstantBeforeRequest => "response.issue-instant.before-request", "SPID-RT SSO; spid-sp-test 14", "Response IssueInstant not before the request's (to the second, less the skew)";
    ResponseIssueInstantFuture => "response.issue-instant.future", "SPID-RT SSO; spid-sp-test 15", "Response IssueInstant not in the future beyond the skew";
    ResponseInResponseToMissing => "response.in-response-to.missing", "SPID-RT SSO; spid-sp-test 16, 17", "Response InResponseTo present and non-empty";
    ResponseInResponseToUnknown => "response.in-response-to.unknown", "SPID-RT SSO; spid-sp-test 18", "InResponseTo names a request this browser session issued";
    ResponseInResponseToReplayed => "response.in-response-to.replayed", "SPID-RT SSO (replay)", "each request is answered once";
    ResponseDestinationMissing => "response.destination.missing", "SPID-RT SSO; spid-sp-test 19, 20", "Destination present and non-empty";
    ResponseDestinationMismatch => "response.destination.mismatch", "SPID-RT SSO; spid-sp-test 21", "Destination is the ACS URL the Response arrived at";
    ResponseStatusMissing => "response.status.missing", "SAML-CORE 3.2.2; spid-sp-test 22-25", "Status with a non-empty StatusCode";
    ResponseStatusNotSuccess => "response.status.not-success", "SAML-CORE 3.2.2.2; spid-sp-test 26", "StatusCode is Success";
    ResponseStatusNr19 => "response.status.nr19", "SPID-RT messaggi-errore nr19; spid-sp-test 104", "IdP reports repeated wrong credentials";
    ResponseStatusNr20 => "response.status.nr20", "SPID-RT messaggi-errore nr20; spid-sp-test 105", "IdP reports no credentials for the requested level";
    ResponseStatusNr21 => "response.status.nr21", "SPID-RT messaggi-errore nr21; spid-sp-test 106", "IdP reports an authentication timeout";
    ResponseStatusNr22 => "response.status.nr22", "SPID-RT messaggi-errore nr22; spid-sp-test 107", "IdP reports consent denied";
    ResponseStatusNr23 => "response.status.nr23", "SPID-RT messaggi-errore nr23; spid-sp-test 108", "IdP reports a suspended or revoked identity";
    ResponseStatusNr25 => "response.status.nr25", "SPID-RT messaggi-errore nr25; spid-sp-test 111", "IdP reports the user cancelled";
    ResponseStatusNr30 => "response.status.nr30", "SPID-RT messaggi-errore nr30; Avviso 18", "IdP reports a wrong identity type";
    ResponseIssuerMissing => "response.issuer.missing", "SPID-RT SSO; spid-sp-test 27, 28", "Response Issuer present and non-empty";
    ResponseIssuerMismatch => "response.issuer.mismatch", "SPID-RT SSO; spid-sp-test 29", "Response Issuer is the IdP entityID";
    ResponseIssuerFormat => "response.issuer.format.invalid", "SPID-RT SSO; spid-sp-test 30, 31", "Response Issuer Format absent or nameid-format:entity";
    // Assertion.
    AssertionMissing => "assertion.missing", "SPID-RT SSO; spid-sp-test 32", "a successful Response carries an Assertion";
    AssertionMultiple => "assertion.multiple", "SPID-RT SSO; xsw3-5", "exactly one Assertion in the message";
    AssertionIdMissing => "assertion.id.missing", "SAML-CORE 2.3.3; spid-sp-test 33, 34", "Assertion ID present and non-empty";
    AssertionVersion => "assertion.version.invalid", "SAML-CORE 2.3.3; spid-sp-test 35", "Assertion Version is 2.0";
    AssertionIssueInstantMissing => "assertion.issue-instant.missing", "SPID-RT SSO; spid-sp-test 36, 37", "Assertion IssueInstant present";
    AssertionIssueInstantMalformed => "assertion.issue-instant.malformed", "SPID-RT SSO; spid-sp-test 38", "Assertion IssueInstant is a UTC xs:dateTime";
    AssertionIssueInstantBeforeRequest => "assertion.issue-instant.before-request", "SPID-RT SSO; spid-sp-test 39", "Assertion IssueInstant not before the request's (to the second, less the skew)";
    AssertionIssueInstantFuture => "assertion.issue-instant.future", "SPID-RT SSO; spid-sp-test 40", "Assertion IssueInstant not in the future beyond the skew";
    AssertionIssuerMissing => "assertion.issuer.missing", "SPID-RT SSO; spid-sp-test 68; spid-saml-check 67", "Assertion Issuer present and non-empty";
    AssertionIssuerMismatch => "assertion.issuer.mismatch", "SPID-RT SSO; spid-sp-test 69", "Assertion Issuer is the IdP entityID";
    AssertionIssuerFormat => "assertion.issuer.format.invalid", "SPID-RT SSO; spid-sp-test 70-72; CIE-SAML ciespid", "Assertion Issuer Format is nameid-format:entity (from a CIE IdP: absent or entity)";
    AssertionSubjectMissing => "assertion.subject.missing", "SPID-RT SSO; spid-sp-test 41, 42", "Subject present";
    AssertionNameIdMissing => "assertion.name-id.missing", "SPID-RT SSO; spid-sp-test 43, 44", "NameID present and non-empty";
    AssertionNameIdFormat => "assertion.name-id.format.invalid", "SPID-RT SSO; spid-sp-test 45-47", "NameID Format is transient";
    AssertionNameIdQualifier => "assertion.name-id.name-qualifier.missing", "SPID-RT SSO; spid-sp-test 48, 49", "NameID NameQualifier present and non-empty";
    AssertionSubjectConfirmationMissing => "assertion.subject-confirmation.missing", "SPID-RT SSO; spid-sp-test 51, 52, 56", "SubjectConfirmation with SubjectConfirmationData";
    AssertionSubjectConfirmationMethod => "assertion.subject-confirmation.method.invalid", "SPID-RT SSO; spid-sp-test 53-55", "SubjectConfirmation Method is bearer";
    AssertionRecipientMissing => "assertion.recipient.missing", "SPID-RT SSO; spid-sp-test 57, 58", "SubjectConfirmationData Recipient present";
    AssertionRecipientMismatch => "assertion.recipient.mismatch", "SPID-RT SSO; spid-sp-test 59", "Recipient is the ACS URL";
    AssertionInResponseToMissing => "assertion.in-response-to.missing", "SPID-RT SSO; spid-sp-test 60, 61", "SubjectConfirmationData InResponseTo present";
    AssertionInResponseToMismatch => "assertion.in-response-to.mismatch", "SPID-RT SSO; spid-sp-test 62", "SubjectConfirmationData InResponseTo is the request ID";
    AssertionConfirmationExpiryMissing => "assertion.subject-confirmation.not-on-or-after.missing", "SPID-RT SSO; spid-sp-test 63, 64", "SubjectConfirmationData NotOnOrAfter present";
    AssertionConfirmationExpiryMalformed => "assertion.subject-confirmation.not-on-or-after.malformed", "SPID-RT SSO; spid-sp-test 65", "SubjectConfirmationData NotOnOrAfter is a UTC xs:dateTime";
    AssertionConfirmationExpired => "assertion.subject-confirmation.expired", "SPID-RT SSO; spid-sp-test 66", "SubjectConfirmationData NotOnOrAfter is in the future";
    AssertionConditionsMissing => "assertion.conditions.missing", "SPID-RT SSO; spid-sp-test 74", "Conditions present";
    AssertionNotBeforeMissing => "assertion.conditions.not-before.missing", "SPID-RT SSO; spid-sp-test 75, 76", "Conditions NotBefore present";
    AssertionNotBeforeMalformed => "assertion.conditions.not-before.malformed", "SPID-RT SSO; spid-sp-test 77", "Conditions NotBefore is a UTC xs:dateTime";
    AssertionNotYetValid => "assertion.conditions.not-yet-valid", "SPID-RT SSO; spid-sp-test 78", "Conditions NotBefore is not in the future beyond the skew";
    AssertionNotOnOrAfterMissing => "assertion.conditions.not-on-or-after.missing", "SPID-RT SSO; spid-sp-test 79, 80 (masked there by NotBefore 2099; isolated variants iso-079, iso-080)", "Conditions NotOnOrAfter present";
    AssertionNotOnOrAfterMalformed => "assertion.conditions.not-on-or-after.malformed", "SPID-RT SSO; spid-sp-test 81", "Conditions NotOnOrAfter is a UTC xs:dateTime";
    AssertionExpired => "assertion.conditions.expired", "SPID-RT SSO; spid-sp-test 82", "Conditions NotOnOrAfter is in the future";
    AssertionAudienceMissing => "assertion.audience.missing", "SPID-RT SSO; spid-sp-test 73, 83, 85, 86; spid-saml-check 84", "AudienceRestriction/Audience present and non-empty";
    AssertionAudienceMismatch => "assertion.audience.mismatch", "SPID-RT SSO; spid-sp-test 87", "Audience is this SP's entityID";
    AssertionAuthnStatementMissing => "assertion.authn-statement.missing", "SPID-RT SSO; spid-sp-test 88, 89", "AuthnStatement present";
    AssertionAuthnContextMissing => "assertion.authn-context.missing", "SPID-RT SSO; spid-sp-test 90, 92, 93; spid-saml-check 91", "AuthnContext with a non-empty AuthnContextClassRef";
    AssertionLevelUnknown => "assertion.level.unknown", "SPID-RT SSO, Avviso 5; spid-sp-test 97", "AuthnContextClassRef is one of the three SPID URIs";
    AssertionLevelInsufficient => "assertion.level.insufficient", "SPID-RT SSO; spid-sp-test 94", "the level obtained satisfies the level requested";
    AssertionAttributeStatementEmpty => "assertion.attribute-statement.empty", "SPID-RT SSO; spid-sp-test 98", "an AttributeStatement holds at least one Attribute";
    AssertionCieAttributes => "assertion.attributes.cie-minimum-set", "CIE-SAML ciespid (attributes: the eIDAS minimum set, always)", "a CIE IdP's Assertion carries name, familyName, dateOfBirth and fiscalNumber";
    AssertionAttributesIdentityType => "assertion.attributes.identity-type", "Avviso 18", "with a spid:Purpose requested, the attributes are the whole set of an identity type that Purpose admits (person data, company data, or both)";
    AssertionAttributeValueMissing => "assertion.attribute.value.missing", "SPID-RT SSO; spid-sp-test 99", "each Attribute has a value";
    AssertionReplayed => "assertion.replayed", "SAML-PROF 4.1.4.5 (replay)", "an Assertion ID is accepted once";
    // Single Logout (SP side).
    LogoutMessageInvalid => "logout.message.invalid", "SAML-PROF 4.4; SPID-RT SLO", "a LogoutResponse, well encoded and well-formed";
    LogoutSignatureInvalid => "logout.signature.invalid", "SAML-PROF 4.4.4.2; SPID-RT SLO", "the LogoutResponse is signed with the IdP metadata certificate";
    LogoutInResponseToUnknown => "logout.in-response-to.unknown", "SAML-PROF 4.4.4.2", "InResponseTo names the LogoutRequest this session sent";
    LogoutIssuerMismatch => "logout.issuer.mismatch", "SAML-PROF 4.4.4.2", "the Issuer is the IdP the LogoutRequest went to";
    LogoutStatusNotSuccess => "logout.status.not-success", "SAML-CORE 3.7.3.2", "the IdP reports Success";
    // OpenID Connect, relying party side (SPID-OIDC, RP side).
    OidcOpUntrusted => "oidc.op.untrusted", "SPID-OIDC federation; OIDC-FED 10", "the OP has a valid trust chain to the trust anchor and a trust mark";
    OidcOpUnlisted => "oidc.op.unlisted", "SPID-OIDC federation; OIDC-FED 8.1 (fetch endpoint); hardening", "the OP is a subordinate the trust anchor has a statement about (else nothing is fetched from it)";
    OidcOpFetchFailed => "oidc.op.fetch-failed", "SPID-OIDC federation; OIDC-FED 10; hardening", "the OP's entity configuration and the anchor's documents can be fetched within the size and time bounds";
    OidcStateMissing => "oidc.state.missing", "SPID-OIDC authz response; OIDC-CORE 3.1.2.5", "the authorization response carries state";
    OidcStateUnknown => "oidc.state.unknown", "SPID-OIDC authz response; RFC 6749 10.12", "state names a request this browser session sent and is used once";
    OidcErrorResponse => "oidc.error-response", "SPID-OIDC authz error response; RFC 6749 4.1.2.1", "the OP did not answer with an error";
    OidcIssMismatch => "oidc.iss.mismatch", "RFC 9207; SPID-OIDC authz response", "iss in the authorization response, when present, is the OP the request went to";
    OidcCodeMissing => "oidc.code.missing", "RFC 6749 4.1.2; django relying_party_test", "a successful authorization response carries code";
    OidcTokenRequestFailed => "oidc.token.request-failed", "SPID-OIDC token endpoint", "the token endpoint answers 200 with JSON";
    OidcTokenResponseInvalid => "oidc.token.response-invalid", "SPID-OIDC token response", "the token response has access_token, token_type Bearer and id_token";
    OidcIdTokenSignature => "oidc.id-token.signature", "SPID-OIDC ID token; OIDC-CORE 3.1.3.7", "the ID token is signed with an allowed alg by a key of the OP's federation-resolved jwks";
    OidcIdTokenClaimIss => "oidc.id-token.claim.iss", "OIDC-CORE 2 (iss REQUIRED)", "ID token iss present and a non-empty string";
    OidcIdTokenClaimSub => "oidc.id-token.claim.sub", "OIDC-CORE 2 (sub REQUIRED)", "ID token sub present and a non-empty string";
    OidcIdTokenClaimAud => "oidc.id-token.claim.aud", "OIDC-CORE 2 (aud REQUIRED)", "ID token aud present, a string or an array of strings";
    OidcIdTokenClaimExp => "oidc.id-token.claim.exp", "OIDC-CORE 2 (exp REQUIRED)", "ID token exp present and a NumericDate";
    OidcIdTokenClaimIat => "oidc.id-token.claim.iat", "OIDC-CORE 2 (iat REQUIRED)", "ID token iat present and a NumericDate";
    OidcIdTokenClaimNbf => "oidc.id-token.claim.nbf", "SPID-OIDC ID token (nbf)", "ID token nbf a NumericDate, present where the profile requires it";
    OidcIdTokenClaimNonce => "oidc.id-token.claim.nonce", "OIDC-CORE 3.1.3.7 (11); OIDC-CORE 12.2", "ID token nonce a non-empty string, present unless the token comes from a refresh";
    OidcIdTokenClaimAcr => "oidc.id-token.claim.acr", "SPID-OIDC ID token (acr REQUIRED)", "ID token acr present and a non-empty string";
    OidcIdTokenClaimAtHash => "oidc.id-token.claim.at-hash", "SPID-OIDC ID token (at_hash mandatory)", "ID token at_hash a non-empty string, present where the profile requires it";
    OidcIdTokenClaimJti => "oidc.id-token.claim.jti", "SPID-OIDC ID token (jti)", "ID token jti a non-empty string, present where the profile requires it";
    OidcIdTokenIss => "oidc.id-token.iss", "OIDC-CORE 3.1.3.7 (2)", "ID token iss is the OP";
    OidcIdTokenAud => "oidc.id-token.aud", "OIDC-CORE 3.1.3.7 (3-5)", "ID token aud is the RP client_id";
    OidcIdTokenExpired => "oidc.id-token.expired", "OIDC-CORE 3.1.3.7 (9)", "ID token exp is in the future";
    OidcIdTokenNotYetValid => "oidc.id-token.not-yet-valid", "OIDC-CORE 3.1.3.7 (10); SPID nbf", "ID token iat and nbf are not in the future";
    OidcIdTokenNonce => "oidc.id-token.nonce", "OIDC-CORE 3.1.3.7 (11)", "ID token nonce is the request's";
    OidcIdTokenAtHash => "oidc.id-token.at-hash", "SPID-OIDC ID token (at_hash mandatory); OIDC-CORE 3.2.2.9", "at_hash matches the access token";
    OidcAcrUnknown => "oidc.acr.unknown", "SPID-OIDC ID token acr", "acr is one of the three SPID level URIs";
    OidcAcrInsufficient => "oidc.acr.insufficient", "SPID-OIDC ID token acr; LG OIDC SPID", "acr is SpidL2 or SpidL3 (this RP requires level 2)";
    OidcUserinfoRequestFailed => "oidc.userinfo.request-failed", "SPID-OIDC userinfo", "the userinfo endpoint answers 200";
    OidcUserinfoNotEncrypted => "oidc.userinfo.not-encrypted", "SPID-OIDC userinfo (signed then encrypted)", "the userinfo response is a JWE (application/jwt or application/jose)";
    OidcUserinfoDecryption => "oidc.userinfo.decryption", "SPID-OIDC userinfo; cryptographic algorithms", "the userinfo JWE uses allowed algorithms and decrypts with the RP encryption key";
    OidcUserinfoSignature => "oidc.userinfo.signature", "SPID-OIDC userinfo", "the inner userinfo JWS is signed by the OP";
    OidcUserinfoClaims => "oidc.userinfo.claims", "SPID-OIDC userinfo", "userinfo iss is the OP, aud the client_id, and it has not expired";
    OidcUserinfoSubMismatch => "oidc.userinfo.sub-mismatch", "OIDC-CORE 5.3.2", "userinfo sub equals the ID token sub";
    OidcSessionMissing => "oidc.session.missing", "SPID-OIDC refresh token and introspection endpoint", "refresh and introspection act on a logged-in session; refresh also needs its refresh token";
    OidcRefreshRequestFailed => "oidc.refresh.request-failed", "SPID-OIDC refresh token; RFC 6749 6", "the token endpoint answers the refresh_token grant with 200 and JSON";
    OidcRefreshSubMismatch => "oidc.refresh.sub-mismatch", "OIDC-CORE 12.2; SPID-OIDC refresh token", "the refreshed ID token sub equals the sub of the login";
    OidcIntrospectionRequestFailed => "oidc.introspection.request-failed", "SPID-OIDC introspection; RFC 7662 2.2", "the introspection endpoint answers 200 with a JSON object";
    OidcIntrospectionInactive => "oidc.introspection.inactive", "RFC 7662 2.2; SPID-OIDC introspection", "the OP reports the session's access token active";
    OidcIntrospectionClaims => "oidc.introspection.claims", "SPID-OIDC introspection endpoint; RFC 7662 2.2", "introspection iss is the OP, client_id this RP, aud this RP or the OP's userinfo endpoint, sub the login's, exp not past";
    // The RP under the CIE reading (CIE-OIDC = spid-cie-oidc-docs, differenze_spid_cie).
    OidcIssMissing => "oidc.iss.missing", "RFC 9207 2.4; CIE-OIDC differenze_spid_cie (iss)", "a successful authorization response carries iss where the profile requires it (CIE)";
    OidcErrorResponseIssMissing => "oidc.error-response.iss-missing", "RFC 9207 2.4; CIE-OIDC differenze_spid_cie (iss on error responses)", "an authorization error response carries iss where the profile requires it (CIE)";
    OidcIdTokenNotEncrypted => "oidc.id-token.not-encrypted", "CIE-OIDC differenze_spid_cie (ID token encryption); OIDC-REG 2 (id_token_encrypted_response_alg)", "the ID token is a JWE when the RP's metadata declares id_token_encrypted_response_alg (CIE)";
    OidcIdTokenDecryption => "oidc.id-token.decryption", "CIE-OIDC differenze_spid_cie (ID token nested JWT); OIDC-CORE 16.14", "the ID token JWE uses the declared algorithms, decrypts with the RP encryption key and nests a JWT (cty JWT)";
    OidcClaimsMismatch => "oidc.claims.mismatch", "CIE-OIDC differenze_spid_cie (claims in the ID token and userinfo); OIDC-CORE 5.3.2", "a claim released in both the ID token and userinfo has the same value in both";
    // Our OP's refusals (what a conforming OP must refuse; the OP-side catalogue expects them).
    OpAuthzClientId => "op.authz.client-id", "SPID-OIDC authz request; check-op 2.1", "client_id is an HTTP parameter (CIE: or the request object names the RP; else HTTP 400, no redirect)";
    OpAuthzClientUntrusted => "op.authz.client.untrusted", "SPID-OIDC automatic registration; OIDC-FED 12.1", "the RP resolves through the trust anchor with a valid trust mark (else HTTP 400)";
    OpAuthzClientUnlisted => "op.authz.client.unlisted", "SPID-OIDC automatic registration; OIDC-FED 8.1, 8.2; hardening", "the RP is a subordinate the trust anchor or an intermediate it lists has a statement about (else HTTP 400, nothing fetched from it)";
    OpAuthzClientFetchFailed => "op.authz.client.fetch-failed", "SPID-OIDC automatic registration; OIDC-FED 10; hardening", "the RP's entity configuration and its chain's documents can be fetched within the size and time bounds (else HTTP 400)";
    OpAuthzRequestMissing => "op.authz.request.missing", "SPID-OIDC authz request; check-op 2.1", "a signed request object is passed by value in request (else HTTP 400)";
    OpAuthzRequestMalformed => "op.authz.request.malformed", "SPID-OIDC authz request; check-op 2.1", "request is a compact JWS (else HTTP 400)";
    OpAuthzRedirectUri => "op.authz.redirect-uri", "SPID-OIDC authz request (redirect_uri); RFC 6749 3.1.2", "redirect_uri is one the RP registered (else HTTP 400, no redirect)";
    OpAuthzRequestSignature => "op.authz.request.signature", "SPID-OIDC authz request; check-op 2.1", "the request object is signed with an allowed alg by a key of the RP's resolved jwks";
    OpAuthzRequestClaims => "op.authz.request.claims", "SPID-OIDC request object", "request object iss = client_id, aud = the OP, iat and exp valid, no sub";
    OpAuthzParameters => "op.authz.parameters", "SPID-OIDC authz request; check-op 2.1", "mandatory claims present; HTTP parameters equal the request object's, client_id and response_type sent as HTTP parameters too (SPID; CIE: when sent)";
    OpAuthzResponseType => "op.authz.response-type", "SPID-OIDC authz request", "response_type is code";
    OpAuthzScope => "op.authz.scope", "SPID-OIDC authz request", "scope holds openid and only the profile's scopes (SPID: offline_access; CIE: also profile, email)";
    OpAuthzPkce => "op.authz.pkce", "SPID-OIDC authz request; RFC 7636", "code_challenge present with method S256";
    OpAuthzNonce => "op.authz.nonce", "SPID-OIDC authz request", "nonce has at least 32 alphanumeric characters";
    OpAuthzState => "op.authz.state", "SPID-OIDC authz request", "state has at least 32 alphanumeric characters";
    OpAuthzAcrValues => "op.authz.acr-values", "SPID-OIDC authz request", "acr_values are SPID level URIs (with offline_access, SpidL1 last)";
    OpAuthzClaims => "op.authz.claims", "SPID-OIDC authz request; check-op 2.1.28", "claims asks attributes under userinfo only (CIE: and id_token)";
    OpAuthzPrompt => "op.authz.prompt", "SPID-OIDC authz request", "prompt is consent or consent login (consent with offline_access)";
    OpAuthzAccessDenied => "op.authz.access-denied", "SPID-OIDC authz error response", "the user authenticated at a requested level and consented";
    OpTokenMethod => "op.token.method", "SPID-OIDC token endpoint; check-op 3.1.0", "the token endpoint is POST only";
    OpTokenGrantType => "op.token.grant-type", "SPID-OIDC token request", "grant_type is authorization_code or refresh_token";
    OpTokenParameters => "op.token.parameters", "SPID-OIDC token request", "client_id, code and the other required parameters are present";
    OpTokenClientUntrusted => "op.token.client.untrusted", "SPID-OIDC token request; OIDC-FED 12.1", "the client resolves through the trust anchor";
    OpTokenClientAssertionType => "op.token.client-assertion.type", "SPID-OIDC private_key_jwt; RFC 7523 2.2; check-op 3.1", "client_assertion_type is urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    OpTokenClientAssertionMissing => "op.token.client-assertion.missing", "SPID-OIDC private_key_jwt; RFC 7523 2.2; check-op 3.1", "a client_assertion is sent";
    OpTokenClientAssertionSignature => "op.token.client-assertion.signature", "SPID-OIDC private_key_jwt; RFC 7523 3 (9); check-op 3.1", "the client assertion is a JWS signed with an allowed alg (no none, no HMAC) by a key of the client's resolved jwks";
    OpTokenClientAssertionIss => "op.token.client-assertion.iss", "SPID-OIDC private_key_jwt; RFC 7523 3 (1); check-op 3.1", "client assertion iss is the client_id";
    OpTokenClientAssertionSub => "op.token.client-assertion.sub", "SPID-OIDC private_key_jwt; RFC 7523 3 (2.B); check-op 3.1", "client assertion sub is the client_id";
    OpTokenClientAssertionAud => "op.token.client-assertion.aud", "SPID-OIDC private_key_jwt; RFC 7523 3 (3); check-op 3.1", "client assertion aud is (or contains) the endpoint it is sent to";
    OpTokenClientAssertionExp => "op.token.client-assertion.exp", "SPID-OIDC private_key_jwt; RFC 7523 3 (4); check-op 3.1", "client assertion exp present, a NumericDate and not past (beyond the skew)";
    OpTokenClientAssertionNbf => "op.token.client-assertion.nbf", "RFC 7523 3 (5)", "client assertion nbf, when present, a NumericDate not in the future (beyond the skew)";
    OpTokenClientAssertionIat => "op.token.client-assertion.iat", "SPID-OIDC private_key_jwt; RFC 7523 3 (6); check-op 3.1", "client assertion iat present, a NumericDate and not in the future (beyond the skew)";
    OpTokenClientAssertionJti => "op.token.client-assertion.jti", "SPID-OIDC private_key_jwt; RFC 7523 3 (7); check-op 3.1", "client assertion jti present, a string of at least 16 bytes";
    OpTokenCode => "op.token.code", "SPID-OIDC token request; RFC 6749 4.1.2", "the code is known, unused, unexpired and this client's";
    OpTokenRedirectUri => "op.token.redirect-uri", "SPID-OIDC token request; check-op 3.1.30/31", "redirect_uri equals the authorization request's";
    OpTokenPkce => "op.token.pkce", "RFC 7636 4.1, 4.6", "code_verifier has 43-128 unreserved characters and matches the challenge";
    OpTokenGrant => "op.token.grant", "SPID-OIDC token request", "the grant is valid (refresh token known, current, this client's)";
    OpUserinfoToken => "op.userinfo.token", "SPID-OIDC userinfo; RFC 6750", "a valid, unexpired, unrevoked access token of this OP as bearer";
    OpUserinfoMethod => "op.userinfo.method", "SPID-OIDC userinfo; check-op 4.5.0", "userinfo is GET only (CIE: GET or POST)";
    OpAuthzRequestReplayed => "op.authz.request.replayed", "hardening (RFC 9101 10.8; SPID-OIDC request object jti)", "a request object (its jti) is answered once (else HTTP 400, no redirect)";
    // Our IdP's refusals beyond the SPID error table.
    IdpRequestReplayed => "idp.request.replayed", "hardening (SAML-CORE 1.3.4 ID uniqueness; SAML-PROF 4.1.4.5)", "a signed AuthnRequest ID is answered once (else a 403 IdP page, nothing sent to the SP)";
    // Our IdP in the CIE profile: the CIE ID request rules (CIE-SAML = the CIE eID SAML
    // documentation, protocolli.rst), each refused with the CIE error code in brackets.
    IdpCieDestination => "idp.cie.destination.not-sso-location", "CIE-SAML protocolli (AuthnRequest Destination) [nr14]", "Destination is the SingleSignOnService location of the binding used, not the entityID";
    IdpCieForceAuthn => "idp.cie.force-authn.missing", "CIE-SAML protocolli (ForceAuthn) [nr8]", "ForceAuthn is true";
    IdpCieIsPassive => "idp.cie.is-passive.present", "CIE-SAML protocolli (IsPassive) [nr15]", "IsPassive is absent";
    IdpCieScoping => "idp.cie.scoping.present", "CIE-SAML protocolli (Scoping, RequesterID) [nr8]", "no Scoping and no RequesterID";
    IdpCieComparison => "idp.cie.comparison.unsupported", "CIE-SAML protocolli (RequestedAuthnContext) [nr12]", "Comparison is exact or minimum";
    IdpCieAcs => "idp.cie.acs.invalid", "CIE-SAML protocolli (AssertionConsumerService) [nr16]", "AssertionConsumerServiceIndex, or AssertionConsumerServiceURL with ProtocolBinding HTTP-POST, naming an ACS of the SP metadata";
    IdpCieAttributes => "idp.cie.attributes.outside-minimum-set", "CIE-SAML protocolli (AttributeConsumingService: eIDAS minimum set) [nr18]", "the requested attributes are within name, familyName, dateOfBirth, fiscalNumber";
    // Every server role: bounded state between two legs of a login.
    ServerPendingFull => "server.pending.full", "hardening (SPID-RT messaggi-errore nr2 at the IdP)", "a new login is refused with HTTP 503 while the pending-login store is full; a login in flight is never evicted";
    // Our trust anchor's refusals.
    TaResolveSubjectUnknown => "ta.resolve.subject-unknown", "OIDC-FED 8.3 (resolve endpoint); hardening", "resolve answers about entities registered at the anchor only (else HTTP 404, nothing fetched)";
    TaResolveFetchFailed => "ta.resolve.fetch-failed", "OIDC-FED 8.3; hardening", "the subject's federation documents can be fetched within the size and time bounds (else HTTP 404)";
    // CNS / CIE 3.0 login over a TLS client certificate (the SP's card checks, codes cns.*).
    // CNS-CERT = AgID "Struttura del certificato di autenticazione CNS" v1.1; DM-CNS = DM 9
    // Dec 2004, regole tecniche CNS; CIE-AUTH = CIE 3.0 authentication certificate policy.
    CnsCertificateMissing => "cns.certificate.missing", "DM-CNS art. 2; RFC 8446 4.4.2", "the client presents a certificate in the TLS handshake";
    CnsCertificateMalformed => "cns.certificate.malformed", "RFC 5280 4.1", "every presented certificate is a DER X.509 v3 certificate";
    CnsCertificateSelfSigned => "cns.certificate.self-signed", "CNS-CERT (issued by a CA of the AgID trusted list)", "the card certificate is not self-signed";
    CnsSignatureHash => "cns.signature.weak-hash", "CNS-CERT v1.1 (sha256WithRSAEncryption); RFC 9155", "the card certificate is signed with SHA-256 or stronger, not SHA-1 or MD5";
    CnsChainUntrusted => "cns.chain.untrusted", "DM-CNS; AgID TSL-IT (IdV services); RFC 5280 6.1", "a chain from the card to a configured CA can be built from the presented certificates";
    CnsChainSignature => "cns.chain.signature", "RFC 5280 6.1.3 (a)(1)", "every certificate of the chain verifies with its issuer's key (no look-alike CA with the same name)";
    CnsChainCaExpired => "cns.chain.ca-expired", "RFC 5280 6.1.3 (a)(2); AgID TSL-IT", "every CA of the chain is within its validity period";
    CnsValidityExpired => "cns.validity.expired", "RFC 5280 4.1.2.5; CNS-CERT", "the card certificate's notAfter is in the future";
    CnsValidityNotYet => "cns.validity.not-yet-valid", "RFC 5280 4.1.2.5; CNS-CERT", "the card certificate's notBefore is in the past";
    CnsKeyTooSmall => "cns.key.too-small", "CNS-CERT v1.1 (RSA 2048); AgID crypto guidelines", "the card key is RSA of at least 2048 bits (or EC of at least 256)";
    CnsKeyUsage => "cns.key-usage.digital-signature", "CNS-CERT (keyUsage critical digitalSignature); RFC 5280 4.2.1.3", "keyUsage is present, critical and has digitalSignature (a nonRepudiation signature certificate is not a CNS)";
    CnsExtendedKeyUsage => "cns.eku.client-auth", "CNS-CERT (extKeyUsage clientAuth); RFC 5280 4.2.1.12", "extendedKeyUsage is present and has clientAuth";
    CnsPolicyMissing => "cns.policy.missing", "CNS-CERT (certificatePolicies 1.3.76.16.2.1); CIE-AUTH 1.3.76.47.4", "certificatePolicies has the CNS policy (or, where accepted, the CIE 3.0 authentication policy)";
    CnsPolicyCieRefused => "cns.policy.cie-refused", "CIE-AUTH 1.3.76.47.4; service configuration", "a CIE 3.0 authentication certificate is presented only where the service accepts CIE";
    CnsSubjectCn => "cns.subject.cn", "CNS-CERT (CN = fiscal code '/' card id '.' hash)", "the subject has one commonName with a '/' after the fiscal code (split on the first '/')";
    CnsFiscalCodeSyntax => "cns.subject.fiscal-code.syntax", "DM Finanze 23/12/1976; DPR 605/1973", "the part before the first '/' is a 16-character fiscal code in upper case";
    CnsFiscalCodeCheck => "cns.subject.fiscal-code.check", "DM Finanze 23/12/1976 (check character)", "the fiscal code's 16th character is its check character";
    CnsRevocationNoSource => "cns.revocation.no-source", "CNS-CERT (CRL distribution point, OCSP); RFC 5280 4.2.1.13, 4.2.2.1", "the card names a CRL distribution point or an OCSP responder";
    CnsCrlUnavailable => "cns.revocation.crl.unavailable", "RFC 5280 6.3; hard-fail policy", "the card's CRL is fetched within bounds, parses and is signed by the card's CA";
    CnsCrlStale => "cns.revocation.crl.stale", "RFC 5280 5.1.2.5, 6.3.3 (a)", "the CRL's nextUpdate is present and in the future";
    CnsCrlRevoked => "cns.revocation.crl.revoked", "RFC 5280 5.1.2.6; DM-CNS", "the card's serial number is not on its CA's CRL";
    CnsOcspUnavailable => "cns.revocation.ocsp.unavailable", "RFC 6960 2.3, 3.2; hard-fail policy", "the OCSP responder answers successful, signed by the CA or its delegated responder, fresh, for this card";
    CnsOcspUnknown => "cns.revocation.ocsp.unknown", "RFC 6960 2.2 (unknown); hard-fail policy", "the OCSP responder knows the card (unknown is refused)";
    CnsOcspRevoked => "cns.revocation.ocsp.revoked", "RFC 6960 2.2 (revoked); DM-CNS", "the OCSP responder does not report the card revoked";
    // check-sp: an external SP's metadata (codes sp-metadata.*).
    SpMdXml => "sp-metadata.xml.well-formed", "XML 1.0; SAML-CORE 1.3", "the metadata is well-formed XML without a DOCTYPE";
    SpMdXsdSaml => "sp-metadata.xsd.saml", "SAML-METADATA 2.0 schema (with XML-DSig, XML-Enc); spid-sp-test 1.0.0", "the metadata validates against the OASIS SAML 2.0 metadata schema";
    SpMdXsdSpid => "sp-metadata.xsd.spid", "SPID-RT metadata SP; Avviso 29 v3; spid-sp-test 1.0.0 (SPID xsd)", "the spid: extensions validate against the SPID extensions schema";
    SpMdXsdInvoicing => "sp-metadata.xsd.invoicing", "Avviso 29 v3 (billing contact); spid-sp-test 1.0.0 (invoicing xsd)", "the fpa: billing extensions validate against the invoicing schema";
    SpMdEntityRoot => "sp-metadata.entity.root", "SPID-RT metadata SP (TR p. 19); spid-sp-test 1.3.0", "the root is one md:EntityDescriptor";
    SpMdEntityId => "sp-metadata.entity.id.present", "SAML-METADATA 2.3.2; spid-sp-test 1.3.1, 1.3.2", "entityID is present and not empty";
    SpMdEntityIdUrl => "sp-metadata.entity.id.url", "SPID-RT metadata SP (entityID is the SP's URL)", "entityID is an absolute http(s) URL";
    SpMdEntityIdHttps => "sp-metadata.entity.id.https", "SPID-RT metadata SP; spid-sp-test -p (production); loopback test SPs exempt", "entityID uses https";
    SpMdEntityIdQuery => "sp-metadata.entity.id.no-query", "Avviso 19 v4; spid-sp-test 01.16.02", "entityID has no query string and no fragment";
    SpMdEntityIdLength => "sp-metadata.entity.id.length", "SAML-CORE 8.3.6", "entityID is at most 1024 characters";
    SpMdEntityValidUntil => "sp-metadata.entity.valid-until", "SAML-METADATA 2.3.2", "validUntil, when present, is a dateTime in the future";
    SpMdSpDescriptor => "sp-metadata.sp-descriptor.single", "SPID-RT metadata SP; spid-sp-test 1.6.0", "exactly one SPSSODescriptor";
    SpMdOnlySpRole => "sp-metadata.sp-descriptor.only-role", "SPID-RT metadata SP", "no other role descriptor (IdP, AA, PDP) beside the SPSSODescriptor";
    SpMdSignaturePresent => "sp-metadata.signature.present", "SPID-RT metadata SP (TR p. 19); spid-sp-test 1.7.0", "EntityDescriptor carries an enveloped ds:Signature";
    SpMdSignatureReference => "sp-metadata.signature.reference", "SAML-CORE 5.4.2; SAML-METADATA 3.1", "one Reference whose URI is '#' + the EntityDescriptor's ID";
    SpMdSignatureTransforms => "sp-metadata.signature.transforms", "SAML-CORE 5.4.4", "only the enveloped-signature and exclusive c14n transforms";
    SpMdSignatureC14n => "sp-metadata.signature.canonicalization", "SAML-CORE 5.4.3", "CanonicalizationMethod is exclusive c14n";
    SpMdSignatureMethod => "sp-metadata.signature.method.present", "XML-DSig 4.3; spid-sp-test 1.7.1, 1.7.2", "SignatureMethod present with an Algorithm";
    SpMdSignatureAlgorithm => "sp-metadata.signature.method.allowed", "SPID-RT (RSA-SHA256 or RSA-SHA512); spid-sp-test 1.7.3", "SignatureMethod is rsa-sha256 or rsa-sha512";
    SpMdDigestMethod => "sp-metadata.signature.digest.present", "XML-DSig 4.3.3; spid-sp-test 1.7.4, 1.7.5", "DigestMethod present with an Algorithm";
    SpMdDigestAlgorithm => "sp-metadata.signature.digest.allowed", "SPID-RT (SHA-256 or SHA-512); spid-sp-test 1.7.6", "DigestMethod is sha256 or sha512";
    SpMdSignatureValid => "sp-metadata.signature.valid", "SPID-RT metadata SP; spid-sp-test 1.9.0", "the signature verifies with the metadata's own signing certificate";
    SpMdSignatureKeyInfo => "sp-metadata.signature.key-info", "SPID-RT metadata SP", "a certificate in the signature's KeyInfo is one of the signing KeyDescriptor's";
    SpMdProtocolPresent => "sp-metadata.sp.protocol-support.present", "SAML-METADATA 2.4.1; spid-sp-test 1.6.1, 1.6.2", "protocolSupportEnumeration present and not empty";
    SpMdProtocolSaml2 => "sp-metadata.sp.protocol-support.saml2", "SPID-RT metadata SP; spid-sp-test 01.06.06", "protocolSupportEnumeration is the SAML 2.0 protocol";
    SpMdAuthnSignedPresent => "sp-metadata.sp.authn-requests-signed.present", "SPID-RT metadata SP (TR p. 20); spid-sp-test 1.6.3, 1.6.4", "AuthnRequestsSigned present";
    SpMdAuthnSigned => "sp-metadata.sp.authn-requests-signed.true", "SPID-RT metadata SP; spid-sp-test 1.6.5", "AuthnRequestsSigned is true";
    SpMdWantSignedPresent => "sp-metadata.sp.want-assertions-signed.present", "SPID-RT metadata SP; spid-sp-test 01.06.07, 01.06.08", "WantAssertionsSigned present";
    SpMdWantSigned => "sp-metadata.sp.want-assertions-signed.true", "SPID-RT metadata SP; spid-sp-test 01.06.09", "WantAssertionsSigned is true";
    SpMdNameIdFormat => "sp-metadata.sp.name-id-format", "SPID-RT SSO (NameID transient); spid-sp-test NameIDFormat", "every NameIDFormat is transient";
    SpMdKeySigning => "sp-metadata.key.signing.present", "SPID-RT metadata SP (TR p. 19); spid-sp-test 1.4.0", "at least one KeyDescriptor for signing";
    SpMdKeySigningCert => "sp-metadata.key.signing.certificate", "SPID-RT metadata SP; spid-sp-test 1.4.1", "each signing KeyDescriptor holds a non-empty X509Certificate";
    SpMdKeyEncryptionCert => "sp-metadata.key.encryption.certificate", "SAML-METADATA 2.4.1.1; spid-sp-test 1.4.2", "each encryption KeyDescriptor holds a non-empty X509Certificate";
    SpMdKeyCertParses => "sp-metadata.key.certificate.parses", "SPID-RT metadata SP", "every X509Certificate is a DER X.509 v3 certificate";
    SpMdCertKeyType => "sp-metadata.cert.key.type", "Avviso 29 v3 §2; spid-sp-test extra (key type)", "the signing certificate's key is RSA";
    SpMdCertKeySizeMin => "sp-metadata.cert.key.size-min", "Avviso 29 v3 §2; spid-sp-test extra (key length)", "the RSA key has at least 2048 bits";
    SpMdCertKeySize => "sp-metadata.cert.key.size-allowed", "Avviso 29 v3 §2 (2048 to 4096 bits)", "the RSA key is 2048, 3072 or 4096 bits";
    SpMdCertSigAlg => "sp-metadata.cert.signature-algorithm", "Avviso 29 v3 §2; spid-sp-test extra (no SHA-1)", "the certificate is signed with SHA-256 or SHA-512 with RSA";
    SpMdCertValidity => "sp-metadata.cert.validity", "Avviso 29 v3; spid-sp-test extra (expiry)", "the certificate is in force (notBefore passed, notAfter not reached)";
    SpMdCertVersion => "sp-metadata.cert.version", "RFC 5280 4.1.2.1; Avviso 29 v3", "the certificate is X.509 v3";
    SpMdCertBcPresent => "sp-metadata.cert.basic-constraints.present", "Avviso 29 v3 §3", "basicConstraints present";
    SpMdCertBcCritical => "sp-metadata.cert.basic-constraints.not-critical", "Avviso 29 v3 §3", "basicConstraints not critical";
    SpMdCertBcCa => "sp-metadata.cert.basic-constraints.not-ca", "Avviso 29 v3 §3", "basicConstraints cA is FALSE";
    SpMdCertKuPresent => "sp-metadata.cert.key-usage.present", "Avviso 29 v3 §3", "keyUsage present";
    SpMdCertKuCritical => "sp-metadata.cert.key-usage.critical", "Avviso 29 v3 §3", "keyUsage critical";
    SpMdCertKuRequired => "sp-metadata.cert.key-usage.required", "Avviso 29 v3 §3", "keyUsage has digitalSignature and nonRepudiation";
    SpMdCertKuForbidden => "sp-metadata.cert.key-usage.forbidden", "Avviso 29 v3 §3", "keyUsage has no keyEncipherment, dataEncipherment, keyAgreement, keyCertSign or cRLSign";
    SpMdCertPolPresent => "sp-metadata.cert.policies.present", "Avviso 29 v3 §3", "certificatePolicies present";
    SpMdCertPolCritical => "sp-metadata.cert.policies.not-critical", "Avviso 29 v3 §3", "certificatePolicies not critical";
    SpMdCertPolAgid => "sp-metadata.cert.policies.agidcert", "Avviso 29 v3 §3", "certificatePolicies holds agIDcert (1.3.76.16.6)";
    SpMdCertPolSector => "sp-metadata.cert.policies.sector", "Avviso 29 v3 §3", "certificatePolicies holds spid-publicsector-SP (1.3.76.16.4.2.1) or spid-privatesector-SP (1.3.76.16.4.3.1) as the metadata's kind";
    SpMdCertSubjectCn => "sp-metadata.cert.subject.common-name", "Avviso 29 v3 §2", "subject commonName present";
    SpMdCertSubjectC => "sp-metadata.cert.subject.country", "Avviso 29 v3 §2", "subject countryName present, an ISO 3166 alpha-2 code";
    SpMdCertSubjectO => "sp-metadata.cert.subject.organization", "Avviso 29 v3 §2", "subject organizationName present";
    SpMdCertSubjectL => "sp-metadata.cert.subject.locality", "Avviso 29 v3 §2", "subject localityName present";
    SpMdCertSubjectOrgId => "sp-metadata.cert.subject.organization-identifier", "Avviso 29 v3 §2", "subject organizationIdentifier is PA:IT- + the IPA code (public), or VATIT- + 11 digits or CF:IT- + the fiscal code (private)";
    SpMdCertSubjectOrgIdMatch => "sp-metadata.cert.subject.organization-identifier.matches", "Avviso 29 v3 §2", "organizationIdentifier names the IPACode, VATNumber or FiscalCode of the metadata's contact";
    SpMdCertSubjectUri => "sp-metadata.cert.subject.uri", "Avviso 29 v3 §2", "subject uri (2.5.4.83) present";
    SpMdCertSubjectUriEntity => "sp-metadata.cert.subject.uri.entity-id", "Avviso 29 v3 §2", "subject uri equals the entityID";
    SpMdCertSubjectPersonal => "sp-metadata.cert.subject.no-personal", "Avviso 29 v3 §2", "no personal subject attributes (givenName, surname, initials, pseudonym, name)";
    SpMdCertSubjectEmail => "sp-metadata.cert.subject.no-email", "Avviso 29 v3 §2 (impersonal subject)", "no emailAddress in the subject";
    SpMdCertSubjectValues => "sp-metadata.cert.subject.values", "Avviso 29 v3 §2", "every subject attribute has a value";
    SpMdAcsPresent => "sp-metadata.acs.present", "SPID-RT metadata SP (TR p. 20); spid-sp-test 1.1.0", "at least one AssertionConsumerService";
    SpMdAcsIndex => "sp-metadata.acs.index", "SAML-METADATA 2.2.3; spid-sp-test 1.1.1, 1.1.2", "each AssertionConsumerService has an unsigned index";
    SpMdAcsIndexUnique => "sp-metadata.acs.index.unique", "SAML-METADATA 2.2.3; SPID-RT metadata SP", "AssertionConsumerService indexes are unique";
    SpMdAcsBinding => "sp-metadata.acs.binding", "SPID-RT metadata SP (HTTP-POST); spid-sp-test 1.1.3, 1.1.4", "each AssertionConsumerService binding is HTTP-POST";
    SpMdAcsLocation => "sp-metadata.acs.location", "SAML-METADATA 2.2.2; spid-sp-test 1.1.5", "each AssertionConsumerService Location is an absolute http(s) URL";
    SpMdAcsHttps => "sp-metadata.acs.location.https", "SPID-RT metadata SP; spid-sp-test 1.1.6 (-p); loopback test SPs exempt", "AssertionConsumerService Locations use https";
    SpMdAcsDefaultSingle => "sp-metadata.acs.default.single", "SPID-RT metadata SP; spid-sp-test 1.1.7", "exactly one AssertionConsumerService with isDefault true";
    SpMdAcsDefaultIndex => "sp-metadata.acs.default.index-zero", "SPID-RT metadata SP; spid-sp-test 1.1.8", "the default AssertionConsumerService has index 0";
    SpMdEndpointPort => "sp-metadata.endpoint.no-port", "spid-sp-test -p (no custom TCP ports); loopback test SPs exempt", "entityID and endpoint URLs carry no custom port";
    SpMdSloPresent => "sp-metadata.slo.present", "Avviso 3; spid-sp-test 1.8.0", "at least one SingleLogoutService";
    SpMdSloBinding => "sp-metadata.slo.binding", "Avviso 3; spid-sp-test 1.8.1-1.8.3", "each SingleLogoutService Binding is HTTP-POST, HTTP-Redirect or SOAP";
    SpMdSloLocation => "sp-metadata.slo.location", "Avviso 3; spid-sp-test 1.8.4, 1.8.5", "each SingleLogoutService Location is an absolute http(s) URL";
    SpMdSloResponseLocation => "sp-metadata.slo.response-location", "SAML-METADATA 2.2.2", "each SingleLogoutService ResponseLocation, when present, is an absolute http(s) URL";
    SpMdSloHttps => "sp-metadata.slo.location.https", "spid-sp-test 1.8.6 (-p); loopback test SPs exempt", "SingleLogoutService Locations use https";
    SpMdAttrsPresent => "sp-metadata.attrs.service.present", "SPID-RT metadata SP (TR p. 20); spid-sp-test 1.2.0", "at least one AttributeConsumingService";
    SpMdAttrsIndex => "sp-metadata.attrs.service.index", "SAML-METADATA 2.4.4.1; spid-sp-test 1.2.1, 1.2.2", "each AttributeConsumingService has an unsigned index";
    SpMdAttrsIndexUnique => "sp-metadata.attrs.service.index.unique", "SAML-METADATA 2.4.4.1", "AttributeConsumingService indexes are unique";
    SpMdAttrsDefault => "sp-metadata.attrs.service.default", "SAML-METADATA 2.4.4.1", "at most one AttributeConsumingService with isDefault true";
    SpMdAttrsServiceName => "sp-metadata.attrs.service.name", "SAML-METADATA 2.4.4.1; spid-sp-test 1.2.3, 1.2.4", "each AttributeConsumingService has a non-empty ServiceName with xml:lang";
    SpMdAttrsServiceNameIt => "sp-metadata.attrs.service.name.italian", "SPID-RT metadata SP (Italian names)", "each AttributeConsumingService has an Italian ServiceName";
    SpMdAttrsRequested => "sp-metadata.attrs.requested.present", "SPID-RT metadata SP; spid-sp-test 1.2.5", "each AttributeConsumingService requests at least one attribute";
    SpMdAttrsName => "sp-metadata.attrs.requested.name", "SPID-RT attributi; spid-sp-test 1.2.6, 1.2.7", "each RequestedAttribute Name is a SPID attribute";
    SpMdAttrsNameFormat => "sp-metadata.attrs.requested.name-format", "SAML-CORE 8.2; spid-sp-test extra (NameFormat)", "each RequestedAttribute NameFormat, when present, is basic or uri";
    SpMdAttrsUnique => "sp-metadata.attrs.requested.unique", "SPID-RT metadata SP; spid-sp-test (duplicated RequestedAttribute)", "no attribute requested twice in one service";
    SpMdOrgPresent => "sp-metadata.org.single", "SPID-RT metadata SP (TR p. 20); spid-sp-test 1.5.0, extra", "exactly one Organization";
    SpMdOrgName => "sp-metadata.org.name", "SPID-RT metadata SP; spid-sp-test 1.5.1-1.5.3", "OrganizationName present, each with xml:lang and a value";
    SpMdOrgDisplayName => "sp-metadata.org.display-name", "SPID-RT metadata SP; spid-sp-test 1.5.4-1.5.7", "OrganizationDisplayName present, each with xml:lang and a value";
    SpMdOrgUrl => "sp-metadata.org.url", "SPID-RT metadata SP; spid-sp-test 1.5.8, 1.5.9", "OrganizationURL present, each with xml:lang and a value";
    SpMdOrgUrlValid => "sp-metadata.org.url.valid", "SAML-METADATA 2.3.2.1; spid-sp-test 1.5.10", "each OrganizationURL is an absolute http(s) URL";
    SpMdOrgLangsSame => "sp-metadata.org.languages.same", "SPID-RT metadata SP; spid-sp-test 1.5.5, 1.5.8", "OrganizationName, DisplayName and URL come in the same languages";
    SpMdOrgLangsUnique => "sp-metadata.org.languages.unique", "SAML-METADATA 2.3.2.1", "no two OrganizationName (DisplayName, URL) in one language";
    SpMdOrgItalian => "sp-metadata.org.languages.italian", "SPID-RT metadata SP; spid-sp-test extra (IT localised)", "OrganizationName, DisplayName and URL each have an it version";
    SpMdOtherSingle => "sp-metadata.contact.other.single", "Avviso 29 v3; spid-sp-test 01.10.0", "exactly one ContactPerson of contactType other";
    SpMdOtherExtensions => "sp-metadata.contact.other.extensions", "Avviso 29 v3; spid-sp-test 01.10.01", "the other contact has exactly one md:Extensions";
    SpMdOtherKind => "sp-metadata.contact.other.kind", "Avviso 29 v3; spid-sp-test extensions_type (Public/Private)", "exactly one of spid:Public and spid:Private";
    SpMdOtherKindEmpty => "sp-metadata.contact.other.kind.empty", "Avviso 29 v3; spid-sp-test 01.12.03", "spid:Public / spid:Private is empty";
    SpMdOtherNoAggregator => "sp-metadata.contact.other.no-aggregator", "Avviso 19 v4; spid-sp-test extensions_type (6 markers)", "no aggregator or operator marker in a plain SP's other contact";
    SpMdOtherCompany => "sp-metadata.contact.other.company", "Avviso 29 v3; spid-sp-test 01.10.02, 1.10.3", "Company, when present, is not empty and equals OrganizationName";
    SpMdOtherEmail => "sp-metadata.contact.other.email.present", "Avviso 29 v3; spid-sp-test 01.10.04, 01.10.05", "the other contact has a non-empty EmailAddress";
    SpMdOtherEmailValid => "sp-metadata.contact.other.email.valid", "Avviso 29 v3; spid-sp-test 01.10.06", "each EmailAddress of the other contact is an e-mail address";
    SpMdOtherPhone => "sp-metadata.contact.other.phone", "Avviso 29 v3; spid-sp-test 01.10.07, 01.10.08", "TelephoneNumber, when present, is + and digits, no spaces";
    SpMdOtherPhoneIt => "sp-metadata.contact.other.phone.italian", "Avviso 29 v3; spid-sp-test 01.10.09 (warning)", "TelephoneNumber starts with +39";
    SpMdOtherVat => "sp-metadata.contact.other.vat-number", "Avviso 29 v3; spid-sp-test 01.11.05, 01.11.06, 01.11.10", "at most one spid:VATNumber, non-empty, with an ISO 3166 country prefix";
    SpMdOtherFiscalCode => "sp-metadata.contact.other.fiscal-code", "Avviso 29 v3; spid-sp-test 01.11.08, 01.11.09", "at most one spid:FiscalCode, non-empty, of 11 or 16 characters";
    SpMdPublicIpaCode => "sp-metadata.contact.public.ipa-code", "Avviso 29 v3; spid-sp-test 01.11.02, 01.11.03", "a public SP has exactly one non-empty spid:IPACode";
    SpMdPublicIpaTest => "sp-metadata.contact.public.ipa-code.not-test", "spid-sp-test (IPACode __aggrsint, warning)", "the IPACode is not the test placeholder __aggrsint";
    SpMdPrivateNoIpa => "sp-metadata.contact.private.no-ipa-code", "Avviso 29 v3; spid-sp-test 01.11.01", "a private SP has no spid:IPACode";
    SpMdPrivateVatOrCf => "sp-metadata.contact.private.vat-or-fiscal-code", "Avviso 29 v3; spid-sp-test 01.11.07", "a private SP has spid:VATNumber or spid:FiscalCode";
    SpMdBillingSingle => "sp-metadata.contact.billing.single", "Avviso 29 v3; spid-sp-test Contacts_PubPriv (billing)", "a private SP has exactly one ContactPerson of contactType billing";
    SpMdBillingExtensions => "sp-metadata.contact.billing.extensions", "Avviso 29 v3; spid-sp-test 01.13.01", "the billing contact has exactly one md:Extensions";
    SpMdBillingCessionario => "sp-metadata.contact.billing.cessionario", "Avviso 29 v3; spid-sp-test 01.14.00", "the billing Extensions hold exactly one fpa:CessionarioCommittente";
    SpMdBillingIdentification => "sp-metadata.contact.billing.identification", "Avviso 29 v3; FatturaPA 1.4.1", "CessionarioCommittente identifies the billed party (IdFiscaleIVA or CodiceFiscale, Anagrafica, Sede)";
    SpMdBillingMatches => "sp-metadata.contact.billing.identification.matches", "Avviso 29 v3", "the billed VAT number or fiscal code is the other contact's";
    SpMdBillingTerzo => "sp-metadata.contact.billing.third-party", "Avviso 29 v3; spid-sp-test 01.14.01, 01.14.02", "TerzoIntermediarioSoggettoEmittente, when present, is not empty";
    SpMdBillingEmail => "sp-metadata.contact.billing.email.present", "Avviso 29 v3; spid-sp-test 01.13.04, 01.13.05", "the billing contact has a non-empty EmailAddress";
    SpMdBillingEmailValid => "sp-metadata.contact.billing.email.valid", "Avviso 29 v3; spid-sp-test 01.13.06", "each billing EmailAddress is an e-mail address";
    SpMdBillingCompany => "sp-metadata.contact.billing.company", "Avviso 29 v3; spid-sp-test 01.13.03", "the billing Company, when present, is not empty";
    SpMdBillingNoKind => "sp-metadata.contact.billing.no-kind", "Avviso 29 v3", "the billing contact carries no spid:Public / spid:Private";
    // check-sp --profile cie-sp-public|cie-sp-private: a CIE SP's metadata (CIE-SAML = the
    // CIE eID SAML documentation, docs.italia.it/italia/cie/cie-eid-saml-docs).
    SpMdCieEntity => "sp-metadata.cie.entity.single", "CIE-SAML metadata SP (one EntityDescriptor)", "the root is exactly one md:EntityDescriptor (no EntitiesDescriptor)";
    SpMdCieSignature => "sp-metadata.cie.signature.present", "CIE-SAML metadata SP (Signature mandatory)", "the EntityDescriptor carries an enveloped ds:Signature";
    SpMdCieAuthnSigned => "sp-metadata.cie.authn-requests-signed", "CIE-SAML metadata SP (SPSSODescriptor)", "AuthnRequestsSigned is true";
    SpMdCieWantSigned => "sp-metadata.cie.want-assertions-signed", "CIE-SAML metadata SP (SPSSODescriptor)", "WantAssertionsSigned is true";
    SpMdCieAttrs => "sp-metadata.cie.attrs.minimum-set", "CIE-SAML metadata SP (AttributeConsumingService: eIDAS minimum set)", "every RequestedAttribute is name, familyName, dateOfBirth or fiscalNumber";
    SpMdCieServiceName => "sp-metadata.cie.attrs.service-name", "CIE-SAML metadata SP (ServiceName)", "each AttributeConsumingService has a non-empty ServiceName with xml:lang, empty only for a urn:uuid name";
    SpMdCieSloRedirect => "sp-metadata.cie.slo.redirect", "CIE-SAML metadata SP (SingleLogoutService)", "at least one SingleLogoutService with Binding HTTP-Redirect";
    SpMdCieNameIdFormat => "sp-metadata.cie.name-id-format", "CIE-SAML metadata SP (NameIDFormat)", "NameIDFormat, when present, is transient";
    SpMdCieContactCount => "sp-metadata.cie.contact.count", "CIE-SAML metadata SP (ContactPerson)", "one or two ContactPerson";
    SpMdCieContactAdmin => "sp-metadata.cie.contact.administrative", "CIE-SAML metadata SP (ContactPerson administrative)", "exactly one administrative ContactPerson; any other is technical";
    SpMdCieExtensions => "sp-metadata.cie.contact.extensions", "CIE-SAML metadata SP (ContactPerson Extensions)", "the administrative contact has one md:Extensions with elements in the CIE saml-extensions namespace";
    SpMdCieKind => "sp-metadata.cie.contact.kind", "CIE-SAML metadata SP (Public / Private)", "exactly one empty cie:Public or cie:Private, the kind the profile names";
    SpMdCieIpaCode => "sp-metadata.cie.contact.public.ipa-code", "CIE-SAML metadata SP (IPACode)", "a public SP has exactly one non-empty cie:IPACode";
    SpMdCieVatOrCf => "sp-metadata.cie.contact.private.vat-or-fiscal-code", "CIE-SAML metadata SP (VATNumber, FiscalCode)", "a private SP has a non-empty cie:VATNumber or cie:FiscalCode, and no cie:IPACode";
    SpMdCieNace2 => "sp-metadata.cie.contact.private.nace2-code", "CIE-SAML metadata SP (NACE2Code)", "a private SP has exactly one non-empty cie:NACE2Code";
    SpMdCieMunicipality => "sp-metadata.cie.contact.municipality", "CIE-SAML metadata SP (Municipality)", "exactly one cie:Municipality, a Belfiore code (a letter and three digits)";
    SpMdCieCompany => "sp-metadata.cie.contact.company", "CIE-SAML metadata SP (Company)", "the administrative contact's Company equals the OrganizationName";
    SpMdCieXsd => "sp-metadata.cie.xsd", "CIE-SAML metadata SP (ContactPerson Extensions); spid-harness schemas/cie-extensions.xsd", "the cie: contact extensions validate against our CIE extensions schema (VATNumber, FiscalCode, NACE2Code, Province, Country, IPACategory forms; the other elements have checks of their own)";
    // check-sp: the AuthnRequest an external SP sent (codes sp-request.*).
    SpRequestArrived => "sp-request.arrived", "SPID-RT SSO; spid-sp-test (SAMLRequest not found)", "the SP's login URL sends an AuthnRequest to our SSO endpoint";
    SpRequestEncoding => "sp-request.encoding", "SAML-BIND 3.4.4.1, 3.5.4; spid-sp-test 2.0.0", "SAMLRequest is valid base64 (of raw DEFLATE for HTTP-Redirect)";
    SpRequestXml => "sp-request.xml.well-formed", "XML 1.0; SAML-CORE 1.3; spid-sp-test (parse)", "the AuthnRequest is well-formed XML without DTD, entities or processing instructions";
    SpRequestLeadingWhitespace => "sp-request.xml.leading-whitespace", "spid-sp-test extra (no newlines at the beginning)", "the XML starts with markup, not whitespace or newlines";
    SpRequestXsd => "sp-request.xsd", "SAML-CORE (saml-schema-protocol-2.0.xsd); spid-sp-test xsd", "the AuthnRequest validates against the SAML protocol schema";
    SpRequestRoot => "sp-request.root", "SAML-CORE 3.4.1; spid-sp-test", "the root element is samlp:AuthnRequest";
    SpRequestIdPresent => "sp-request.id.present", "SAML-CORE 3.2.1; SPID-RT AuthnRequest; spid-sp-test", "ID present and non-empty";
    SpRequestIdSyntax => "sp-request.id.syntax", "SAML-CORE 1.3.4 (xs:ID)", "ID is an xs:ID: an NCName, so not starting with a digit and without colons";
    SpRequestVersionPresent => "sp-request.version.present", "SAML-CORE 3.2.1; SPID-RT AuthnRequest; spid-sp-test", "Version present";
    SpRequestVersion => "sp-request.version.value", "SAML-CORE 3.2.1; spid-sp-test", "Version is 2.0";
    SpRequestIssueInstantPresent => "sp-request.issue-instant.present", "SAML-CORE 3.2.1; SPID-RT AuthnRequest; spid-sp-test", "IssueInstant present and non-empty";
    SpRequestIssueInstantFormat => "sp-request.issue-instant.format", "SAML-CORE 1.3.3; SPID-RT AuthnRequest; spid-sp-test", "IssueInstant is an xs:dateTime in UTC with the Z suffix";
    SpRequestIssueInstantFuture => "sp-request.issue-instant.future", "SPID-RT AuthnRequest (IssueInstant)", "IssueInstant is not in the future beyond the clock skew";
    SpRequestIssueInstantStale => "sp-request.issue-instant.stale", "SPID-RT AuthnRequest (IssueInstant)", "IssueInstant is not older than the clock skew when the request arrives";
    SpRequestDestinationPresent => "sp-request.destination.present", "SPID-RT AuthnRequest; spid-sp-test", "Destination present and non-empty";
    SpRequestDestination => "sp-request.destination.value", "SPID-RT AuthnRequest; Avviso 11; spid-sp-test", "Destination is our SSO location or our IdP entityID";
    SpRequestIsPassive => "sp-request.is-passive", "SPID-RT AuthnRequest; spid-sp-test", "IsPassive absent";
    SpRequestForceAuthnPresent => "sp-request.force-authn.present", "SPID-RT AuthnRequest; spid-sp-test (and extra)", "ForceAuthn present when a level above SpidL1 may be delivered";
    SpRequestForceAuthn => "sp-request.force-authn.value", "SPID-RT AuthnRequest; spid-sp-test (and extra)", "ForceAuthn is an xs:boolean, true or 1 when a level above SpidL1 may be delivered";
    SpRequestAcsChoice => "sp-request.acs.choice", "SAML-CORE 3.4.1; SPID-RT AuthnRequest; spid-sp-test", "either AssertionConsumerServiceIndex or AssertionConsumerServiceURL with ProtocolBinding, not both";
    SpRequestAcsIndexValue => "sp-request.acs.index.value", "SAML-CORE 3.4.1 (xs:unsignedShort); spid-sp-test", "AssertionConsumerServiceIndex is a non-negative integer";
    SpRequestAcsIndexKnown => "sp-request.acs.index.known", "SPID-RT AuthnRequest; spid-sp-test", "AssertionConsumerServiceIndex is the index of an AssertionConsumerService in the SP metadata";
    SpRequestAcsUrlKnown => "sp-request.acs.url.known", "SPID-RT AuthnRequest; spid-sp-test", "AssertionConsumerServiceURL is the Location of an AssertionConsumerService in the SP metadata";
    SpRequestProtocolBinding => "sp-request.acs.protocol-binding", "SPID-RT AuthnRequest; spid-sp-test", "ProtocolBinding, with AssertionConsumerServiceURL, is HTTP-POST";
    SpRequestAcsBinding => "sp-request.acs.binding", "SPID-RT AuthnRequest (Response by HTTP-POST)", "the AssertionConsumerService the request designates has Binding HTTP-POST in the SP metadata";
    SpRequestAttributeIndexPresent => "sp-request.attribute-index.present", "SPID-RT AuthnRequest; spid-sp-test", "AttributeConsumingServiceIndex present";
    SpRequestAttributeIndexValue => "sp-request.attribute-index.value", "SAML-CORE 3.4.1 (xs:unsignedShort); spid-sp-test", "AttributeConsumingServiceIndex is a non-negative integer";
    SpRequestAttributeIndexKnown => "sp-request.attribute-index.known", "SPID-RT AuthnRequest; spid-sp-test", "AttributeConsumingServiceIndex is the index of an AttributeConsumingService in the SP metadata";
    SpRequestIssuerPresent => "sp-request.issuer.present", "SPID-RT AuthnRequest; spid-sp-test", "exactly one Issuer, with a value";
    SpRequestIssuer => "sp-request.issuer.value", "SPID-RT AuthnRequest; spid-sp-test", "Issuer is the SP entityID";
    SpRequestIssuerFormat => "sp-request.issuer.format", "SPID-RT AuthnRequest; spid-sp-test", "Issuer Format present and nameid-format:entity";
    SpRequestIssuerNameQualifierPresent => "sp-request.issuer.name-qualifier", "SPID-RT AuthnRequest; spid-sp-test", "Issuer NameQualifier present and non-empty";
    SpRequestIssuerNameQualifier => "sp-request.issuer.name-qualifier.value", "SPID-RT AuthnRequest (NameQualifier = SP entityID)", "Issuer NameQualifier is the SP entityID";
    SpRequestNameIdPolicyPresent => "sp-request.name-id-policy.present", "SPID-RT AuthnRequest; spid-sp-test", "exactly one NameIDPolicy";
    SpRequestNameIdPolicyFormat => "sp-request.name-id-policy.format", "SPID-RT AuthnRequest; spid-sp-test", "NameIDPolicy Format present and nameid-format:transient";
    SpRequestAllowCreate => "sp-request.name-id-policy.allow-create", "SPID-RT AuthnRequest; Avviso 5; spid-sp-test", "NameIDPolicy has no AllowCreate";
    SpRequestAuthnContextPresent => "sp-request.authn-context.present", "SPID-RT AuthnRequest; spid-sp-test", "exactly one RequestedAuthnContext";
    SpRequestComparison => "sp-request.authn-context.comparison", "SPID-RT AuthnRequest; spid-sp-test", "Comparison present and one of exact, minimum, better, maximum";
    SpRequestClassRefPresent => "sp-request.authn-context.class-ref.present", "SPID-RT AuthnRequest; spid-sp-test", "an AuthnContextClassRef with a value";
    SpRequestClassRefSingle => "sp-request.authn-context.class-ref.single", "SPID-RT AuthnRequest; spid-sp-test", "exactly one AuthnContextClassRef";
    SpRequestClassRef => "sp-request.authn-context.class-ref.value", "SPID-RT AuthnRequest; Avviso 5; spid-sp-test", "every AuthnContextClassRef is one of the three SpidL URIs";
    SpRequestLevelSatisfiable => "sp-request.authn-context.satisfiable", "SAML-CORE 3.3.2.2.1; SPID-RT AuthnRequest", "Comparison and level leave a SPID level to deliver (not better than SpidL3)";
    SpRequestExtensions => "sp-request.extensions", "SAML-CORE 3.2.1", "Extensions, when present, holds elements only, none in a SAML namespace";
    SpRequestPurpose => "sp-request.purpose", "Avviso 18", "spid:Purpose, when present, is one element in samlp:Extensions with P, LP, PG, PF or PX";
    SpRequestSubject => "sp-request.subject", "SPID-RT AuthnRequest; spid-sp-test", "Subject, when present, is one, with one NameID of Format unspecified and a NameQualifier";
    SpRequestConditions => "sp-request.conditions", "SPID-RT AuthnRequest; spid-sp-test", "Conditions, when present, is one, with NotBefore and NotOnOrAfter as UTC xs:dateTime";
    SpRequestConditionsWindow => "sp-request.conditions.window", "SAML-CORE 2.5.1.2", "Conditions, when present, hold when the request arrives (within the skew)";
    SpRequestScoping => "sp-request.scoping", "SPID-RT AuthnRequest; Avviso 5", "no Scoping (RequesterID is reserved for future use)";
    SpRequestSignatureParams => "sp-request.signature.params", "SAML-BIND 3.4.4.1; SPID-RT HTTP-Redirect; spid-sp-test", "HTTP-Redirect: SigAlg and Signature parameters present";
    SpRequestSigAlg => "sp-request.signature.sig-alg", "SPID-RT (SHA-256 or stronger)", "HTTP-Redirect: SigAlg is RSA or ECDSA with SHA-256, SHA-384 or SHA-512";
    SpRequestSignatureQuery => "sp-request.signature.query", "SAML-BIND 3.4.4.1; SPID-RT HTTP-Redirect; spid-sp-test", "HTTP-Redirect: the signature over the SAMLRequest, RelayState and SigAlg octets as received verifies with a metadata signing certificate";
    SpRequestSignatureNotEnveloped => "sp-request.signature.not-enveloped", "SAML-BIND 3.4.4.1", "HTTP-Redirect: no ds:Signature inside the XML";
    SpRequestSignaturePresent => "sp-request.signature.present", "SPID-RT HTTP-POST; spid-sp-test", "HTTP-POST: exactly one ds:Signature, a child of AuthnRequest, and none elsewhere";
    SpRequestSignaturePlacement => "sp-request.signature.placement", "SAML-CORE 3.2.1 (schema order)", "HTTP-POST: the ds:Signature follows the Issuer";
    SpRequestSignatureReference => "sp-request.signature.reference", "SAML-CORE 5.4.2", "HTTP-POST: one Reference whose URI is '#' + the AuthnRequest ID";
    SpRequestSignatureMethod => "sp-request.signature.method", "SPID-RT (SHA-256 or stronger); spid-sp-test", "HTTP-POST: SignatureMethod is RSA or ECDSA with SHA-256, SHA-384 or SHA-512";
    SpRequestSignatureDigest => "sp-request.signature.digest", "SPID-RT (SHA-256 or stronger); spid-sp-test", "HTTP-POST: DigestMethod is SHA-256, SHA-384 or SHA-512";
    SpRequestSignatureTransforms => "sp-request.signature.transforms", "SAML-CORE 5.4.4", "HTTP-POST: only the enveloped-signature and exclusive c14n transforms";
    SpRequestSignatureC14n => "sp-request.signature.c14n", "SAML-CORE 5.4.3", "HTTP-POST: CanonicalizationMethod is exclusive c14n";
    SpRequestSignatureValid => "sp-request.signature.valid", "SPID-RT HTTP-POST; spid-sp-test", "HTTP-POST: the signature verifies with a metadata signing certificate (KeyInfo ignored)";
    SpRequestSignatureKeyInfo => "sp-request.signature.key-info", "SAML-CORE 5.4.5", "HTTP-POST: a certificate in KeyInfo is one of the metadata signing certificates";
    SpRequestRelayStatePresent => "sp-request.relay-state.present", "SPID-RT binding; spid-sp-test", "RelayState present and non-empty";
    SpRequestRelayStateOpaque => "sp-request.relay-state.opaque", "SPID-RT binding; spid-sp-test", "RelayState is opaque: no URL, no path";
    SpRequestRelayStateLength => "sp-request.relay-state.length", "SAML-BIND 3.4.3, 3.5.3", "RelayState is at most 80 bytes";
    // check-sp --profile cie-sp-*: the AuthnRequest of a CIE SP (CIE-SAML protocolli).
    SpRequestCieDestination => "sp-request.cie.destination", "CIE-SAML protocolli (AuthnRequest Destination)", "Destination is the SingleSignOnService location of the binding used (not the entityID)";
    SpRequestCieForceAuthn => "sp-request.cie.force-authn", "CIE-SAML protocolli (ForceAuthn)", "ForceAuthn is true at every level";
    SpRequestCieIsPassive => "sp-request.cie.is-passive", "CIE-SAML protocolli (IsPassive)", "IsPassive is absent";
    SpRequestCieScoping => "sp-request.cie.scoping", "CIE-SAML protocolli (Scoping, RequesterID)", "no Scoping and no RequesterID";
    SpRequestCieIssuerFormat => "sp-request.cie.issuer.format", "CIE-SAML protocolli (Issuer)", "Issuer Format absent or nameid-format:entity";
    SpRequestCieNameIdPolicy => "sp-request.cie.name-id-policy", "CIE-SAML protocolli (NameIDPolicy)", "one NameIDPolicy, Format transient, no AllowCreate";
    SpRequestCieComparison => "sp-request.cie.comparison", "CIE-SAML protocolli (RequestedAuthnContext)", "one RequestedAuthnContext, Comparison exact or minimum";
    SpRequestCieClassRef => "sp-request.cie.class-ref", "CIE-SAML protocolli (AuthnContextClassRef)", "each AuthnContextClassRef is SpidL1, SpidL2 or SpidL3";
    SpRequestCieAcs => "sp-request.cie.acs", "CIE-SAML protocolli (AssertionConsumerService)", "AssertionConsumerServiceIndex, or AssertionConsumerServiceURL with ProtocolBinding HTTP-POST";
    SpRequestCieSignatureRedirect => "sp-request.cie.signature.redirect", "CIE-SAML protocolli (HTTP-Redirect)", "HTTP-Redirect: SigAlg and Signature in the query, no ds:Signature in the XML";
    SpRequestCieSignaturePost => "sp-request.cie.signature.post", "CIE-SAML protocolli (HTTP-POST)", "HTTP-POST: one enveloped ds:Signature, a child of AuthnRequest";
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl Rule {
    /// Looks a rule up by its code.
    pub fn from_code(code: &str) -> Option<Rule> {
        Rule::ALL.iter().copied().find(|r| r.code() == code)
    }

    /// The rule for a SPID user-facing error code carried in a Response status.
    pub fn for_spid_error(e: crate::errors::SpidError) -> Option<Rule> {
        Some(match e.0 {
            19 => Rule::ResponseStatusNr19,
            20 => Rule::ResponseStatusNr20,
            21 => Rule::ResponseStatusNr21,
            22 => Rule::ResponseStatusNr22,
            23 => Rule::ResponseStatusNr23,
            25 => Rule::ResponseStatusNr25,
            30 => Rule::ResponseStatusNr30,
            _ => return None,
        })
    }

    /// A Markdown table of every rule (the generated docs).
    pub fn markdown_table() -> String {
        let mut s = String::from("| code | requires | reference |\n|---|---|---|\n");
        for r in Rule::ALL {
            s.push_str(&format!(
                "| `{}` | {} | {} |\n",
                r.code(),
                r.summary(),
                r.reference()
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_dotted_lowercase() {
        let mut seen = HashSet::new();
        for r in Rule::ALL {
            let c = r.code();
            assert!(seen.insert(c), "duplicate code {c}");
            assert!(c.contains('.'), "{c}");
            assert!(
                c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ".-".contains(ch)),
                "{c}"
            );
            assert_eq!(Rule::from_code(c), Some(*r));
        }
    }

    #[test]
    fn spid_errors_map_to_rules() {
        for e in crate::errors::SpidError::USER_FACING {
            let r = Rule::for_spid_error(e).unwrap();
            assert!(r.code().ends_with(&format!("nr{}", e.0)));
        }
    }
}
