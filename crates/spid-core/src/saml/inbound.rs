//! Receiving a signed SAML protocol message over HTTP-Redirect (query signature) or HTTP-POST
//! (enveloped signature), verified with certificates from the sender's metadata only.

use super::binding::{self, MessageParam, MAX_MESSAGE_BYTES};
use super::dsig;
use super::xml::{self, Element, Limits};

/// Which binding carried the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// HTTP-Redirect.
    Redirect,
    /// HTTP-POST.
    Post,
}

/// Why a message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    /// Missing parameter, bad encoding, or not XML we accept.
    #[error("message: {0}")]
    Message(String),
    /// The signature is missing or does not verify with the sender's certificates.
    #[error("signature: {0}")]
    Signature(String),
}

/// A received message, parsed but not yet verified.
#[derive(Debug, Clone)]
pub struct Received {
    /// The root element.
    pub root: Element,
    /// The serialised XML.
    pub xml: String,
    /// RelayState.
    pub relay_state: Option<String>,
    /// The binding.
    pub via: Via,
    redirect_sig: Option<binding::RedirectSignature>,
}

/// Decodes `param` from a GET query (`raw_query`) or POST form fields.
pub fn receive(
    param: MessageParam,
    raw_query: Option<&str>,
    form: &[(String, String)],
) -> Result<Received, InboundError> {
    let (text, relay, via, sig) = if let Some((_, v)) = form.iter().find(|(k, _)| k == param.name())
    {
        let text = binding::decode_post(v, MAX_MESSAGE_BYTES)
            .map_err(|e| InboundError::Message(e.to_string()))?;
        let relay = form
            .iter()
            .find(|(k, _)| k == "RelayState")
            .map(|(_, v)| v.clone());
        (text, relay, Via::Post, None)
    } else {
        let q = raw_query.ok_or_else(|| InboundError::Message(format!("no {}", param.name())))?;
        let m = binding::decode_redirect(q, MAX_MESSAGE_BYTES)
            .map_err(|e| InboundError::Message(e.to_string()))?;
        if m.param != param {
            return Err(InboundError::Message(format!("expected {}", param.name())));
        }
        (m.xml, m.relay_state, Via::Redirect, m.signature)
    };
    let root =
        xml::parse(&text, &Limits::default()).map_err(|e| InboundError::Message(e.to_string()))?;
    Ok(Received {
        root,
        xml: text,
        relay_state: relay,
        via,
        redirect_sig: sig,
    })
}

impl Received {
    /// Verifies the message with `certs` (DER, from the sender's metadata): the query
    /// signature on HTTP-Redirect, or an enveloped signature covering the whole root element
    /// on HTTP-POST.
    pub fn verify(&self, certs: &[Vec<u8>]) -> Result<(), InboundError> {
        match self.via {
            Via::Redirect => {
                let sig = self
                    .redirect_sig
                    .as_ref()
                    .ok_or_else(|| InboundError::Signature("unsigned".into()))?;
                let ok = certs.iter().any(|der| sig.verify_der(der).unwrap_or(false));
                ok.then_some(()).ok_or_else(|| {
                    InboundError::Signature("query signature does not verify".into())
                })
            }
            Via::Post => {
                let reduced = dsig::verify_and_reduce(&self.xml, certs)
                    .map_err(|e| InboundError::Signature(e.to_string()))?;
                let signed = xml::parse(&reduced, &Limits::default())
                    .map_err(|e| InboundError::Signature(e.to_string()))?;
                // The signature must cover the root element we act on, not a fragment.
                (signed.qname == self.root.qname && signed.attr("ID") == self.root.attr("ID"))
                    .then_some(())
                    .ok_or_else(|| {
                        InboundError::Signature("signature does not cover the message".into())
                    })
            }
        }
    }
}

/// An outgoing message, ready for HTTP.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// Send a 302 to this URL (HTTP-Redirect, signed query).
    Redirect(url::Url),
    /// Send this auto-posting HTML page (HTTP-POST, enveloped signature).
    Form(String),
}

/// Signs `message` with `cred` and encodes it for `via` towards `endpoint`.
pub fn send(
    via: Via,
    endpoint: &str,
    param: MessageParam,
    message: Element,
    relay: Option<&str>,
    cred: &dsig::Credential,
) -> Result<Outgoing, InboundError> {
    let url = url::Url::parse(endpoint).map_err(|e| InboundError::Message(e.to_string()))?;
    match via {
        Via::Redirect => binding::encode_redirect(
            &url,
            param,
            &message.to_xml(),
            relay,
            Some((&cred.key, binding::SigAlg::RsaSha256)),
        )
        .map(Outgoing::Redirect)
        .map_err(|e| InboundError::Message(e.to_string())),
        Via::Post => {
            let xml = dsig::sign_root(message, cred)
                .map_err(|e| InboundError::Signature(e.to_string()))?;
            Ok(Outgoing::Form(binding::post_form_html(
                &url,
                param,
                &binding::encode_post(&xml),
                relay,
            )))
        }
    }
}
