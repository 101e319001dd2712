//! SPID error codes (`messaggi-errore`), the SAML status each maps to, and the user message.

use crate::saml::ns;

/// Who receives the error and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorChannel {
    /// Shown to the user by the IdP (an HTTP error page); nothing goes back to the SP.
    UserPage {
        /// HTTP status of the IdP page.
        http_status: u16,
    },
    /// Sent to the SP as a SAML Response with this status and sub-status.
    Response {
        /// Top-level StatusCode.
        status: &'static str,
        /// Nested StatusCode, if any.
        sub_status: Option<&'static str>,
    },
}

/// A SPID error code `nrN` (`ErrorCode nrN` in the StatusMessage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpidError(pub u8);

impl SpidError {
    /// nr19: repeated wrong credentials.
    pub const WRONG_CREDENTIALS: SpidError = SpidError(19);
    /// nr20: no credentials for the requested level.
    pub const NO_CREDENTIALS_FOR_LEVEL: SpidError = SpidError(20);
    /// nr21: timeout during authentication.
    pub const TIMEOUT: SpidError = SpidError(21);
    /// nr22: consent denied.
    pub const CONSENT_DENIED: SpidError = SpidError(22);
    /// nr23: identity suspended or revoked.
    pub const SUSPENDED: SpidError = SpidError(23);
    /// nr25: the user cancelled.
    pub const CANCELLED: SpidError = SpidError(25);
    /// nr30: identity type not the requested one (Avviso 18).
    pub const WRONG_IDENTITY_TYPE: SpidError = SpidError(30);

    /// The codes an SP must show the user with their specific message.
    pub const USER_FACING: [SpidError; 7] = [
        SpidError(19),
        SpidError(20),
        SpidError(21),
        SpidError(22),
        SpidError(23),
        SpidError(25),
        SpidError(30),
    ];

    /// The StatusMessage text, `ErrorCode nrNN`.
    pub fn status_message(self) -> String {
        format!("ErrorCode nr{}", self.0)
    }

    /// Parses `ErrorCode nrNN` (surrounding whitespace tolerated).
    pub fn from_status_message(s: &str) -> Option<SpidError> {
        let n = s.trim().strip_prefix("ErrorCode nr")?;
        let n: u8 = n.trim().parse().ok()?;
        (1..=30).contains(&n).then_some(SpidError(n))
    }

    /// How this error is delivered.
    pub fn channel(self) -> ErrorChannel {
        use ErrorChannel::*;
        let resp = |status, sub| Response {
            status,
            sub_status: sub,
        };
        match self.0 {
            1 => resp(ns::STATUS_SUCCESS, None),
            3 => UserPage { http_status: 500 },
            2 => UserPage { http_status: 503 },
            4..=7 | 10 => UserPage { http_status: 403 },
            8 | 11 => resp(ns::STATUS_REQUESTER, None),
            9 => resp(ns::STATUS_VERSION_MISMATCH, None),
            12 => resp(ns::STATUS_REQUESTER, Some(ns::STATUS_NO_AUTHN_CONTEXT)),
            13 => resp(ns::STATUS_REQUESTER, Some(ns::STATUS_REQUEST_DENIED)),
            14 | 16..=18 => resp(ns::STATUS_REQUESTER, Some(ns::STATUS_REQUEST_UNSUPPORTED)),
            15 => resp(ns::STATUS_REQUESTER, Some(ns::STATUS_NO_PASSIVE)),
            _ => resp(ns::STATUS_RESPONDER, Some(ns::STATUS_AUTHN_FAILED)),
        }
    }

    /// The message an SP shows the user (Italian, as the SPID rules give the meaning).
    pub fn user_message(self) -> &'static str {
        match self.0 {
            2 => "Sistema di autenticazione non disponibile.",
            3 => "Errore di sistema.",
            4..=7 => "Richiesta di autenticazione non valida (binding o firma).",
            8..=18 => "La richiesta di autenticazione del servizio non è conforme a SPID.",
            19 => "Autenticazione fallita per ripetuta sottomissione di credenziali errate: superato il numero di tentativi consentiti.",
            20 => "Non hai credenziali compatibili con il livello di sicurezza richiesto dal servizio.",
            21 => "Tempo scaduto durante l'autenticazione: riprova.",
            22 => "Hai negato il consenso all'invio dei dati al servizio.",
            23 => "La tua identità SPID risulta sospesa o revocata, oppure le credenziali sono bloccate.",
            25 => "Hai annullato l'autenticazione.",
            30 => "L'identità usata non è del tipo richiesto dal servizio (uso professionale o persona giuridica).",
            _ => "Autenticazione non riuscita.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_message_round_trip() {
        for e in SpidError::USER_FACING {
            assert_eq!(SpidError::from_status_message(&e.status_message()), Some(e));
            assert_eq!(
                e.channel(),
                ErrorChannel::Response {
                    status: ns::STATUS_RESPONDER,
                    sub_status: Some(ns::STATUS_AUTHN_FAILED)
                }
            );
        }
        assert_eq!(SpidError::from_status_message("ErrorCode nrX"), None);
        assert_eq!(SpidError::from_status_message("nr19"), None);
        assert_eq!(
            SpidError(5).channel(),
            ErrorChannel::UserPage { http_status: 403 }
        );
        assert_eq!(
            SpidError(15).channel(),
            ErrorChannel::Response {
                status: ns::STATUS_REQUESTER,
                sub_status: Some(ns::STATUS_NO_PASSIVE)
            }
        );
    }
}
