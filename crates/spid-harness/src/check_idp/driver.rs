//! The login driver: how to get through an IdP's pages (configuration), and the built-in one
//! for our IdP.

use super::*;

/// A form on the IdP's pages and what to put in it. Values may use `{username}`,
/// `{password}` and `{otp}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormStep {
    /// The form's id, or…
    pub form_id: Option<String>,
    /// …a field the form contains, or…
    pub has_field: Option<String>,
    /// …text its action URL contains.
    #[serde(default)]
    pub action_contains: Option<String>,
    /// Fields (and the submit button's name/value) to send.
    pub fields: BTreeMap<String, String>,
}

/// A user the driver can log in as.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriverUser {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
    /// OTP, for L≥2.
    #[serde(default)]
    pub otp: Option<String>,
    /// Highest level the user reaches.
    pub level: SpidLevel,
    /// The user's identity type (Avviso 18; default a natural person): the Purpose probes
    /// log in one user of each type the driver has.
    #[serde(default)]
    pub identity_type: IdentityType,
}

/// How to get through an IdP's login pages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginDriver {
    /// Steps tried on every page, first match wins (login, OTP, consent…).
    pub steps: Vec<FormStep>,
    /// Users.
    pub users: Vec<DriverUser>,
}

impl LoginDriver {
    /// The driver for our IdP's pages and fixture users (SPID profile).
    pub fn builtin() -> Self {
        Self::builtin_for(IdpProfile::Spid)
    }

    /// The driver for our IdP's pages and the fixture users of `profile`
    /// (`fixtures/users.toml` or `fixtures/cie-users.toml`), every active user with its
    /// identity type.
    pub fn builtin_for(profile: IdpProfile) -> Self {
        let step = |id: &str, f: &[(&str, &str)]| FormStep {
            form_id: Some(id.into()),
            has_field: None,
            action_contains: None,
            fields: f
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let text = match profile {
            IdpProfile::Spid => spid_idp::users::DEFAULT_USERS,
            IdpProfile::Cie => spid_idp::users::CIE_USERS,
        };
        let users = spid_idp::users::parse(text)
            .unwrap_or_default()
            .into_iter()
            .filter(|u| u.status == spid_idp::users::Status::Active)
            .map(|u| DriverUser {
                level: u.max_level(),
                identity_type: u.identity_type,
                username: u.username,
                password: u.password,
                otp: u.otp,
            })
            .collect();
        LoginDriver {
            steps: vec![
                step(
                    "login-form",
                    &[
                        ("username", "{username}"),
                        ("password", "{password}"),
                        ("action", "login"),
                    ],
                ),
                step("otp-form", &[("otp", "{otp}"), ("action", "verify")]),
                step("consent-form", &[("action", "accept")]),
            ],
            users,
        }
    }

    /// Logs `user` in starting at `start`; returns the final page.
    pub async fn login(
        &self,
        ua: &mut UserAgent,
        start: &Url,
        user: &DriverUser,
    ) -> Result<Page, crate::agent::AgentError> {
        let first = ua.get(start).await?;
        self.continue_from(ua, first, user).await
    }

    /// Goes on from `first` (the answer to whatever started the login) through the pages
    /// the steps recognise; returns the final page.
    pub async fn continue_from(
        &self,
        ua: &mut UserAgent,
        first: Page,
        user: &DriverUser,
    ) -> Result<Page, crate::agent::AgentError> {
        let mut page = ua.auto_post(first).await?;
        for _ in 0..8 {
            let found = self.steps.iter().find_map(|s| {
                let f = match (&s.form_id, &s.has_field, &s.action_contains) {
                    (Some(id), _, _) => page.form_by_id(id),
                    (None, Some(field), _) => page.form_with_field(field),
                    (None, None, Some(part)) => page
                        .forms()
                        .into_iter()
                        .find(|f| f.action.as_str().contains(part.as_str())),
                    (None, None, None) => None,
                }?;
                Some((s, f))
            });
            let Some((step, form)) = found else { break };
            let vals: Vec<(String, String)> = step
                .fields
                .iter()
                .map(|(k, v)| {
                    let v = v
                        .replace("{username}", &user.username)
                        .replace("{password}", &user.password)
                        .replace("{otp}", user.otp.as_deref().unwrap_or_default());
                    (k.clone(), v)
                })
                .collect();
            let refs: Vec<(&str, &str)> =
                vals.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let next = ua.submit(&page, &form, &refs).await?;
            page = ua.auto_post(next).await?;
        }
        Ok(page)
    }
}
