//! The CNS / CIE 3.0 authentication-certificate profile, as facts both sides share: the policy
//! OIDs, how the subject CN splits into a fiscal code, and the fiscal code's check character.
//!
//! Sources: AgID "Struttura del certificato di autenticazione CNS" v1.1 (CN =
//! `<fiscal code>/<card id>.<hash>`, policy 1.3.76.16.2.1); the CIE 3.0 authentication
//! certificate policy 1.3.76.47.4; DM Finanze 23/12/1976 for the fiscal code.

/// Certificate policy of CNS authentication certificates.
pub const POLICY_CNS: &str = "1.3.76.16.2.1";
/// Certificate policy of CIE 3.0 authentication certificates.
pub const POLICY_CIE_AUTH: &str = "1.3.76.47.4";

/// Splits a CNS subject CN on its **first** `/`: the fiscal code, then `<card id>.<hash>`
/// (the base64 hash may itself contain `/`). `None` when there is no `/`.
pub fn split_cn(cn: &str) -> Option<(&str, &str)> {
    cn.split_once('/')
}

/// Why a string is not a valid fiscal code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FiscalCodeError {
    /// Not 16 characters in the fiscal-code pattern (upper case only).
    #[error("not a 16-character upper-case fiscal code")]
    Syntax,
    /// The 16th character is not the check character of the first 15.
    #[error("check character {found} is not {expected}")]
    CheckCharacter {
        /// The character found.
        found: char,
        /// The check character of the first 15.
        expected: char,
    },
}

/// Characters allowed where a digit stands (omocodia replaces digits with these letters).
const OMOCODIA: &str = "LMNPQRSTUV";
/// Month letters.
const MONTHS: &str = "ABCDEHLMPRST";

fn is_digitlike(c: u8) -> bool {
    c.is_ascii_digit() || OMOCODIA.as_bytes().contains(&c)
}

/// Checks a natural person's fiscal code: the pattern `LLLLLL DD M DD L DDD C` in upper case
/// (digits possibly replaced by omocodia letters), then the check character.
pub fn check_fiscal_code(cf: &str) -> Result<(), FiscalCodeError> {
    let b = cf.as_bytes();
    if b.len() != 16 {
        return Err(FiscalCodeError::Syntax);
    }
    let upper = |c: u8| c.is_ascii_uppercase();
    let ok = b[..6].iter().all(|&c| upper(c))
        && is_digitlike(b[6])
        && is_digitlike(b[7])
        && MONTHS.as_bytes().contains(&b[8])
        && is_digitlike(b[9])
        && is_digitlike(b[10])
        && upper(b[11])
        && b[12..15].iter().all(|&c| is_digitlike(c))
        && upper(b[15]);
    if !ok {
        return Err(FiscalCodeError::Syntax);
    }
    let expected = check_character(&cf[..15]).ok_or(FiscalCodeError::Syntax)?;
    let found = char::from(b[15]);
    if found == expected {
        Ok(())
    } else {
        Err(FiscalCodeError::CheckCharacter { found, expected })
    }
}

/// The check character of the first 15 characters of a fiscal code (upper-case letters and
/// digits only; `None` otherwise).
pub fn check_character(first15: &str) -> Option<char> {
    // Values of characters in odd positions (1st, 3rd, ...), indexed by digit or letter.
    const ODD: [u32; 26] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24,
        23,
    ];
    if first15.len() != 15 {
        return None;
    }
    let mut sum = 0u32;
    for (i, c) in first15.bytes().enumerate() {
        let idx = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A'),
            _ => return None,
        };
        // Positions count from 1: index 0 is an odd position.
        sum += if i % 2 == 0 { ODD[idx as usize] } else { idx };
    }
    char::from_u32(u32::from(b'A') + sum % 26)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_codes_check() {
        for cf in [
            "RSSMRA80A01H501U",
            "BNCGLI85M41F205B",
            "VRDLCU75C15L219T",
            "NRENNA90D50G273I",
            "SSPPLA70A01H501M",
            "SPSCRL82E50F839O",
            // A real card's CN (cie-cns-apache-docker README).
            "MSRNTN77H15C351X",
        ] {
            assert_eq!(check_fiscal_code(cf), Ok(()), "{cf}");
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(
            check_fiscal_code("rssmra80a01h501u"),
            Err(FiscalCodeError::Syntax)
        );
        assert_eq!(
            check_fiscal_code("RSSMRA80A01H501"),
            Err(FiscalCodeError::Syntax)
        );
        assert_eq!(
            check_fiscal_code("RSSMRA80Z01H501U"),
            Err(FiscalCodeError::Syntax)
        );
        assert!(matches!(
            check_fiscal_code("RSSMRA80A01H501A"),
            Err(FiscalCodeError::CheckCharacter { found: 'A', .. })
        ));
        assert_eq!(
            check_fiscal_code("RSSMRA80A01H5€1U"),
            Err(FiscalCodeError::Syntax)
        );
    }

    #[test]
    fn cn_splits_on_the_first_slash() {
        assert_eq!(
            split_cn("MSRNTN77H15C351X/6120016461039008.i1ZpZfaCX/eKyikBfnF8to+M2T8="),
            Some((
                "MSRNTN77H15C351X",
                "6120016461039008.i1ZpZfaCX/eKyikBfnF8to+M2T8="
            ))
        );
        assert_eq!(split_cn("MSRNTN77H15C351X"), None);
    }
}
