//! XML Schema validation (libxml2) against the SAML 2.0 schemas.
