//! The logins through our SP: the level matrix (`login.*`), the Avviso 18 Purpose probes
//! (`purpose.*`) and the CIE logins (`login.cie.*`), each Response judged by its duties.

use super::*;

/// What one login through our SP left behind: the final status and rule, the last
/// Response (XML, parsed) and the driver's error, if any.
struct Attempt {
    status: u16,
    rule: Option<String>,
    xml: Option<String>,
    error: Option<String>,
}

impl Attempt {
    fn parsed(&self) -> Option<Element> {
        self.xml
            .as_deref()
            .and_then(|x| xml::parse(x, &Limits::default()).ok())
    }

    /// The `idp.response` duty: no Response reached our SP.
    fn no_response(&self, duties: &mut Vec<CheckResult>) {
        check(
            duties,
            "idp.response",
            false,
            format!(
                "no Response reached the SP (HTTP {}, {})",
                self.status,
                self.error.as_deref().unwrap_or("no error")
            ),
        );
    }

    /// The `sp.rules` duty: our SP accepted the login.
    fn sp_accepted(&self, duties: &mut Vec<CheckResult>) {
        check(
            duties,
            "sp.rules",
            self.status == 200,
            format!(
                "HTTP {} {}",
                self.status,
                self.rule.as_deref().unwrap_or("")
            ),
        );
    }
}

/// Logs `user` in through our SP's `/login` with `query`.
async fn attempt(
    base: &str,
    md: &EntityMetadata,
    driver: &LoginDriver,
    user: &DriverUser,
    query: &str,
) -> anyhow::Result<Attempt> {
    let start = Url::parse(&format!(
        "{base}/login?idp={}&{query}",
        urlenc(&md.entity_id)
    ))?;
    let mut ua = runner::user_agent()?;
    let page = driver.login(&mut ua, &start, user).await;
    let (status, rule) = match &page {
        Ok(p) => (p.status, p.spid_rule().map(str::to_string)),
        Err(_) => (0, None),
    };
    let xml = ua
        .trace()
        .iter()
        .rev()
        .flat_map(|x| x.saml.iter())
        .find(|m| m.param == "SAMLResponse")
        .and_then(|m| m.xml.clone());
    Ok(Attempt {
        status,
        rule,
        xml,
        error: page.err().map(|e| e.to_string()),
    })
}

/// The attribute names and values of a Response's Assertion.
fn assertion_attributes(r: &Element) -> Vec<(String, String)> {
    r.child(ns::SAML, "Assertion")
        .map(|a| {
            a.children_named(ns::SAML, "AttributeStatement")
                .flat_map(|s| s.children_named(ns::SAML, "Attribute"))
                .filter_map(|x| {
                    let v = x
                        .children_named(ns::SAML, "AttributeValue")
                        .next()
                        .map(|v| v.text().trim().to_string())
                        .unwrap_or_default();
                    Some((x.attr("Name")?.to_string(), v))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `v` is `TINIT-` and a 16-character Italian fiscal code (letters and digits).
fn is_tinit_fiscal_number(v: &str) -> bool {
    v.strip_prefix("TINIT-").is_some_and(|cf| {
        cf.len() == 16
            && cf
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    })
}

/// Whether `v` is a calendar date written YYYY-MM-DD.
fn is_iso_date(v: &str) -> bool {
    v.len() == 10 && chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok()
}

/// The CIE login matrix: L1–L3 under exact and minimum (the only Comparisons CIE has), each
/// by the weakest driver user who reaches the level (a CieID app user for L1/L2, a card
/// holder for L3), each Response judged by our SP (the IdP registered as CIE) and the CIE
/// Response duties.
pub(super) async fn cie_login_matrix(
    select: &Selection,
    base: &str,
    md: &EntityMetadata,
    driver: &LoginDriver,
) -> anyhow::Result<Vec<LoginResult>> {
    if driver.users.is_empty() {
        anyhow::bail!("the login driver (--driver) has no users");
    }
    let mut out = Vec::new();
    for level in SpidLevel::ALL {
        let Some(user) = driver
            .users
            .iter()
            .filter(|u| u.level >= level && u.identity_type == IdentityType::Person)
            .min_by_key(|u| u.level)
        else {
            continue;
        };
        for cmp in CIE_COMPARISONS {
            let id = cie_login_id(level, cmp);
            if !select.keeps(&id) {
                continue;
            }
            let a = attempt(
                base,
                md,
                driver,
                user,
                &format!("level={}&comparison={}", level.number(), cmp.as_str()),
            )
            .await?;
            let mut duties = Vec::new();
            match a.parsed() {
                None => a.no_response(&mut duties),
                Some(r) => cie_duties(&r, &md.entity_id, level, cmp, &mut duties),
            }
            if a.xml.is_some() {
                a.sp_accepted(&mut duties);
            }
            let pass = duties.iter().all(|d| d.holds());
            out.push(LoginResult {
                id,
                level,
                comparison: cmp,
                user: user.username.clone(),
                expected: "login".into(),
                purpose: None,
                identity_type: None,
                status: a.status,
                rule: a.rule,
                duties,
                outcome: if pass { Outcome::Pass } else { Outcome::Fail },
                why: None,
            });
        }
    }
    Ok(out)
}

/// The CIE duties on a login's Response (ciespid, protocolli).
fn cie_duties(
    r: &Element,
    entity_id: &str,
    level: SpidLevel,
    cmp: Comparison,
    duties: &mut Vec<CheckResult>,
) {
    let issuer = r.child(ns::SAML, "Issuer");
    check(
        duties,
        "idp.cie.response-issuer",
        issuer.is_some_and(|i| i.text().trim() == entity_id && i.attr("Format").is_none()),
        match issuer {
            None => "no Response Issuer".to_string(),
            Some(i) => format!("{}, Format {}", i.text().trim(), shown(i.attr("Format"))),
        },
    );
    let a = r.child(ns::SAML, "Assertion");
    let ai = a.and_then(|a| a.child(ns::SAML, "Issuer"));
    check(
        duties,
        "idp.cie.assertion-issuer",
        ai.is_some_and(|i| {
            i.text().trim() == entity_id
                && matches!(i.attr("Format"), None | Some(ns::NAMEID_ENTITY))
        }),
        match ai {
            None => "no Assertion Issuer".to_string(),
            Some(i) => format!("{}, Format {}", i.text().trim(), shown(i.attr("Format"))),
        },
    );
    let name_id = a
        .and_then(|a| a.child(ns::SAML, "Subject"))
        .and_then(|s| s.child(ns::SAML, "NameID"));
    check(
        duties,
        "idp.cie.name-id",
        name_id.is_some_and(|n| {
            n.attr("Format") == Some(ns::NAMEID_TRANSIENT)
                && n.attr("NameQualifier") == Some(entity_id)
        }),
        match name_id {
            None => "no NameID".to_string(),
            Some(n) => format!(
                "Format {}, NameQualifier {}",
                shown(n.attr("Format")),
                shown(n.attr("NameQualifier"))
            ),
        },
    );
    let authn = a.and_then(|a| a.child(ns::SAML, "AuthnStatement"));
    let got = authn
        .and_then(|s| s.child(ns::SAML, "AuthnContext"))
        .and_then(|c| c.child(ns::SAML, "AuthnContextClassRef"))
        .and_then(|c| SpidLevel::from_uri(c.text().trim()));
    check(
        duties,
        "idp.level-satisfies-request",
        got.is_some_and(|g| spid_core::satisfies(level, cmp, g)),
        format!(
            "{} for {} {level}",
            got.map_or("no known level".to_string(), |g| g.to_string()),
            cmp.as_str()
        ),
    );
    check(
        duties,
        "idp.cie.session-index",
        authn.and_then(|s| s.attr("SessionIndex")).is_some(),
        format!(
            "SessionIndex {}",
            shown(authn.and_then(|s| s.attr("SessionIndex")))
        ),
    );
    let attrs = assertion_attributes(r);
    let mut names: Vec<&str> = attrs.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    let mut want = cie::MINIMUM_ATTRIBUTES.to_vec();
    want.sort_unstable();
    check(
        duties,
        "idp.cie.minimum-attributes",
        names == want,
        list(&names),
    );
    let value = |n: &str| attrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    check(
        duties,
        "idp.cie.fiscal-number",
        value("fiscalNumber").is_some_and(is_tinit_fiscal_number),
        format!("fiscalNumber {}", shown(value("fiscalNumber"))),
    );
    check(
        duties,
        "idp.cie.date-of-birth",
        value("dateOfBirth").is_some_and(is_iso_date),
        format!("dateOfBirth {}", shown(value("dateOfBirth"))),
    );
}

/// The Avviso 18 probes: for each row of [`professional::MATRIX`] and each identity type the
/// driver has a user of (level 2 or more), a login at L2 minimum with that `spid:Purpose`.
/// Where the matrix admits the type, the Response must carry the type's attributes and our SP
/// accept it; elsewhere the IdP must answer `ErrorCode nr30` (our SP:
/// `response.status.nr30`).
pub(super) async fn purpose_matrix(
    select: &Selection,
    base: &str,
    md: &EntityMetadata,
    driver: &LoginDriver,
) -> anyhow::Result<Vec<LoginResult>> {
    let mut out = Vec::new();
    for row in &professional::MATRIX {
        for t in IdentityType::ALL {
            let Some(user) = driver
                .users
                .iter()
                .filter(|u| u.identity_type == t && u.level >= SpidLevel::L2)
                .min_by_key(|u| u.level)
            else {
                continue;
            };
            let id = purpose_id(row.purpose, t);
            if !select.keeps(&id) {
                continue;
            }
            let admitted = professional::admits(row.purpose, t);
            let mut query = "level=2&comparison=minimum".to_string();
            if let Some(p) = row.purpose {
                query.push_str(&format!("&purpose={}", p.as_str()));
            }
            let a = attempt(base, md, driver, user, &query).await?;
            let mut duties = Vec::new();
            match a.parsed() {
                None => a.no_response(&mut duties),
                Some(r) if admitted => {
                    let attrs = assertion_attributes(&r);
                    let names: Vec<&str> = attrs.iter().map(|(n, _)| n.as_str()).collect();
                    let missing = t.missing(&names);
                    check(
                        &mut duties,
                        "idp.purpose.identity-attributes",
                        missing.is_none(),
                        match missing {
                            None => format!("{} set: {}", t.label(), list(&names)),
                            Some(m) => format!("{m} missing for a {}", t.label()),
                        },
                    );
                    a.sp_accepted(&mut duties);
                }
                Some(r) => {
                    let msg = r
                        .child(ns::SAMLP, "Status")
                        .and_then(|s| s.child(ns::SAMLP, "StatusMessage"))
                        .map(|m| m.text().trim().to_string());
                    check(
                        &mut duties,
                        "idp.purpose.nr30",
                        msg.as_deref() == Some("ErrorCode nr30")
                            && a.rule.as_deref() == Some("response.status.nr30"),
                        format!(
                            "StatusMessage {}, HTTP {} {}",
                            shown(msg.as_deref()),
                            a.status,
                            a.rule.as_deref().unwrap_or("")
                        ),
                    );
                }
            }
            let pass = duties.iter().all(|d| d.holds());
            out.push(LoginResult {
                id,
                level: SpidLevel::L2,
                comparison: Comparison::Minimum,
                user: user.username.clone(),
                expected: if admitted { "login" } else { "nr30" }.into(),
                purpose: Some(row.purpose.map_or("absent", Purpose::as_str).into()),
                identity_type: Some(t),
                status: a.status,
                rule: a.rule,
                duties,
                outcome: if pass { Outcome::Pass } else { Outcome::Fail },
                why: None,
            });
        }
    }
    Ok(out)
}

pub(super) async fn login_matrix(
    select: &Selection,
    sp: &ServiceProvider,
    base: &str,
    md: &EntityMetadata,
    driver: &LoginDriver,
) -> anyhow::Result<Vec<LoginResult>> {
    // The level matrix is about natural persons (the Purpose probes take the other types).
    let persons: Vec<&DriverUser> = driver
        .users
        .iter()
        .filter(|u| u.identity_type == IdentityType::Person)
        .collect();
    let strongest = persons
        .iter()
        .copied()
        .max_by_key(|u| u.level)
        .ok_or_else(|| anyhow::anyhow!("the login driver has no users"))?;
    let mut plan: Vec<(SpidLevel, Comparison, &DriverUser, bool)> = Vec::new();
    for l in SpidLevel::ALL {
        for c in Comparison::ALL {
            plan.push((l, c, strongest, false));
        }
    }
    // A user without L3 credentials asked for L3 (already in the matrix when nobody has L3).
    let weak = persons
        .iter()
        .copied()
        .filter(|u| u.level < SpidLevel::L3)
        .min_by_key(|u| u.level);
    if let Some(weak) = weak.filter(|_| strongest.level == SpidLevel::L3) {
        plan.push((SpidLevel::L3, Comparison::Minimum, weak, true));
    }
    let requested: Vec<String> = sp.config().attributes.clone();
    let mut out = Vec::new();
    for (level, cmp, user, weak) in plan {
        let id = login_id(level, cmp, weak);
        if !select.keeps(&id) {
            continue;
        }
        // A SPID IdP must answer nr20 when no credential of the user satisfies the request.
        let possible = SpidLevel::ALL
            .iter()
            .any(|g| *g <= user.level && spid_core::satisfies(level, cmp, *g));
        let expected = if possible { "login" } else { "nr20" };
        let query = format!("level={}&comparison={}", level.number(), cmp.as_str());
        let a = attempt(base, md, driver, user, &query).await?;
        let (status, rule) = (a.status, a.rule.clone());
        let mut duties = Vec::new();
        let resp_xml = a.xml.as_deref();
        let resp = a.parsed();
        let pass = match (expected, &resp) {
            ("login", Some(r)) => {
                let a = r.child(ns::SAML, "Assertion");
                let authn = a.and_then(|a| a.child(ns::SAML, "AuthnStatement"));
                let got = authn
                    .and_then(|s| s.child(ns::SAML, "AuthnContext"))
                    .and_then(|c| c.child(ns::SAML, "AuthnContextClassRef"))
                    .and_then(|c| SpidLevel::from_uri(c.text().trim()));
                check(
                    &mut duties,
                    "idp.level-satisfies-request",
                    got.is_some_and(|g| spid_core::satisfies(level, cmp, g)),
                    format!(
                        "{} for {} {level}",
                        got.map_or("no known level".to_string(), |g| g.to_string()),
                        cmp.as_str()
                    ),
                );
                // Not a duty at L1 (where a SessionIndex is allowed).
                if level != SpidLevel::L1 {
                    let si = authn.and_then(|s| s.attr("SessionIndex")).is_some();
                    check(
                        &mut duties,
                        "idp.no-session-index-above-l1",
                        !si,
                        format!("SessionIndex present: {si}"),
                    );
                }
                let mut names: Vec<String> = a
                    .map(|a| {
                        a.children_named(ns::SAML, "AttributeStatement")
                            .flat_map(|s| s.children_named(ns::SAML, "Attribute"))
                            .filter_map(|x| x.attr("Name").map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                names.sort();
                let mut want = requested.clone();
                want.sort();
                check(
                    &mut duties,
                    "idp.attributes-as-requested",
                    names == want,
                    list(&names),
                );
                check(
                    &mut duties,
                    "sp.rules",
                    status == 200,
                    format!("HTTP {status} {}", rule.as_deref().unwrap_or("")),
                );
                duties.iter().all(|d| d.holds())
            }
            ("nr20", Some(_)) => {
                let m = resp_xml.is_some_and(|x| x.contains("ErrorCode nr20"));
                check(
                    &mut duties,
                    "idp.nr20",
                    m && rule.as_deref() == Some("response.status.nr20"),
                    format!("HTTP {status} {}", rule.as_deref().unwrap_or("")),
                );
                // The duty, not the message text alone: an nr20 our SP cannot read as one
                // (wrong status codes around it) fails the login too.
                duties.iter().all(|d| d.holds())
            }
            (_, None) => {
                a.no_response(&mut duties);
                false
            }
            _ => false,
        };
        out.push(LoginResult {
            id,
            level,
            comparison: cmp,
            user: user.username.clone(),
            expected: expected.into(),
            purpose: None,
            identity_type: None,
            status,
            rule,
            duties,
            outcome: if pass { Outcome::Pass } else { Outcome::Fail },
            why: None,
        });
    }
    Ok(out)
}
