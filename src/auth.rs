//! Authentication: JWT bearer tokens with a pinned algorithm, and the roles
//! they carry. Authorization in resolvers goes through [`RoleGuard`].
use std::collections::HashSet;
use std::str::FromStr;

use async_graphql::{Context, Guard};
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Who may do what.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "UPPERCASE")]
#[graphql(name = "Role")]
pub enum Role {
    /// Everything.
    Admin,
    /// Sales and BDC agents: the CRM's daily work.
    Agent,
    /// Partner integrations: submit leads and read back their own.
    Partner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "ADMIN",
            Self::Agent => "AGENT",
            Self::Partner => "PARTNER",
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "ADMIN" => Ok(Self::Admin),
            "AGENT" => Ok(Self::Agent),
            "PARTNER" => Ok(Self::Partner),
            other => Err(format!("unknown role `{other}` (ADMIN, AGENT or PARTNER)")),
        }
    }
}

/// The authenticated caller of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub sub: String,
    pub role: Role,
    /// The token's `iat` (seconds): a revocation refuses tokens issued before it.
    pub issued_at: i64,
    /// The token's `exp` (seconds): a long-lived connection ends with it.
    pub expires_at: i64,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// The claims of our tokens.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    pub aud: Audience,
    /// Not valid before this instant (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

/// `aud` may be one string or a list.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Shortest HS256 secret accepted: shorter ones can be brute-forced.
pub const MIN_SECRET_BYTES: usize = 32;

/// Refuse a secret too short to sign tokens safely.
pub fn check_secret(secret: &str) -> Result<(), String> {
    if secret.len() < MIN_SECRET_BYTES {
        Err(format!(
            "CRM_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes (it has {})",
            secret.len()
        ))
    } else {
        Ok(())
    }
}

/// How far in the future a token's `iat` may be (clock skew between hosts).
pub const MAX_IAT_SKEW_SECS: i64 = 60;
/// Longest token subject accepted.
pub const MAX_SUB_CHARS: usize = 200;

/// Longest token lifetime `crm token` will issue.
pub const MAX_TOKEN_TTL: Duration = Duration::days(366);

/// Signing and verification keys with the validation rules in force.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
}

impl JwtKeys {
    /// HS256 with a shared secret; the algorithm is pinned, never read from
    /// the token header.
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self {
            encoding: Some(EncodingKey::from_secret(secret)),
            decoding: DecodingKey::from_secret(secret),
            validation: validation(Algorithm::HS256, issuer, audience),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    /// Issue a token (CLI, development mode, tests).
    pub fn issue(
        &self,
        role: Role,
        sub: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<String, AppError> {
        let key = self
            .encoding
            .as_ref()
            .ok_or_else(|| AppError::Internal("no signing key configured".into()))?;
        let claims = Claims {
            sub: sub.to_owned(),
            role,
            exp: (now + ttl).timestamp(),
            iat: now.timestamp(),
            iss: self.issuer.clone(),
            aud: Audience::One(self.audience.clone()),
            nbf: None,
        };
        jsonwebtoken::encode(&Header::new(self.validation.algorithms[0]), &claims, key)
            .map_err(|e| AppError::Internal(format!("token encoding failed: {e}")))
    }

    /// Verify a bearer token: signature, algorithm, `exp`, `iss`, `aud`, role.
    pub fn verify(&self, token: &str) -> Result<Principal, AppError> {
        self.verify_until(token).map(|(principal, _)| principal)
    }

    /// [`Self::verify`], also returning when the token expires (a WebSocket
    /// ends then).
    pub fn verify_until(&self, token: &str) -> Result<(Principal, DateTime<Utc>), AppError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                let reason = match e.kind() {
                    ErrorKind::ExpiredSignature => "token expired",
                    ErrorKind::ImmatureSignature => "token not valid yet (nbf)",
                    ErrorKind::InvalidIssuer => "wrong token issuer",
                    ErrorKind::InvalidAudience => "wrong token audience",
                    ErrorKind::InvalidSignature => "bad token signature",
                    ErrorKind::InvalidAlgorithm => "token algorithm not accepted",
                    ErrorKind::MissingRequiredClaim(_) => "token misses a required claim",
                    _ => "invalid token",
                };
                AppError::Unauthenticated(reason.into())
            })?;
        check_subject(&data.claims.sub)?;
        if data.claims.iat > Utc::now().timestamp() + MAX_IAT_SKEW_SECS {
            return Err(AppError::Unauthenticated(
                "token issued in the future (iat)".into(),
            ));
        }
        let expires = DateTime::from_timestamp(data.claims.exp, 0)
            .ok_or_else(|| AppError::Unauthenticated("token expiry out of range".into()))?;
        Ok((
            Principal {
                sub: data.claims.sub,
                role: data.claims.role,
                issued_at: data.claims.iat,
                expires_at: data.claims.exp,
            },
            expires,
        ))
    }

    /// Read `Authorization: Bearer <token>` and verify it.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AppError> {
        self.authenticate_until(authorization)
            .map(|(principal, _)| principal)
    }

    /// [`Self::authenticate`], also returning when the token expires.
    pub fn authenticate_until(
        &self,
        authorization: Option<&str>,
    ) -> Result<(Principal, DateTime<Utc>), AppError> {
        let header = authorization
            .ok_or_else(|| AppError::Unauthenticated("missing bearer token".into()))?;
        // The scheme word is case-insensitive (RFC 9110 §11.1).
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                AppError::Unauthenticated("authorization header is not `Bearer <token>`".into())
            })?;
        self.verify_until(token)
    }
}

/// A subject must name someone: not empty, not over [`MAX_SUB_CHARS`], no
/// control characters (it is stored with every lead and written to logs).
pub fn check_subject(sub: &str) -> Result<(), AppError> {
    let refuse = |why: &str| Err(AppError::Unauthenticated(format!("token subject {why}")));
    if sub.trim().is_empty() {
        refuse("is empty")
    } else if sub.chars().count() > MAX_SUB_CHARS {
        refuse(&format!("is longer than {MAX_SUB_CHARS} characters"))
    } else if sub.chars().any(char::is_control) {
        refuse("holds control characters")
    } else {
        Ok(())
    }
}

fn validation(alg: Algorithm, issuer: &str, audience: &str) -> Validation {
    let mut v = Validation::new(alg);
    v.algorithms = vec![alg];
    v.leeway = 0;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.required_spec_claims = HashSet::from(["exp", "iat", "iss", "aud", "sub"].map(String::from));
    v
}

/// Field and operation guard: the caller's role must be one of these.
pub struct RoleGuard(&'static [Role]);

impl RoleGuard {
    /// ADMIN only.
    pub const fn admin() -> Self {
        Self(&[Role::Admin])
    }

    /// ADMIN and AGENT: the CRM's internal users.
    pub const fn staff() -> Self {
        Self(&[Role::Admin, Role::Agent])
    }

    /// Any authenticated role.
    pub const fn any() -> Self {
        Self(&[Role::Admin, Role::Agent, Role::Partner])
    }
}

impl Guard for RoleGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        match ctx.data_opt::<Principal>() {
            Some(p) if self.0.contains(&p.role) => Ok(()),
            Some(_) => Err(AppError::Forbidden.into()),
            None => Err(AppError::Unauthenticated("missing bearer token".into()).into()),
        }
    }
}

/// `visible` predicate of admin-only fields and types: introspection shows
/// them to ADMIN only. (Validation is walled separately, see
/// [`crate::graphql::admin_only`].)
pub fn is_admin(ctx: &Context<'_>) -> bool {
    ctx.data_opt::<Principal>().is_some_and(Principal::is_admin)
}

/// `visible` predicate of fields partners must not see (what became of a
/// lead in the CRM).
pub fn is_staff(ctx: &Context<'_>) -> bool {
    ctx.data_opt::<Principal>()
        .is_some_and(|p| matches!(p.role, Role::Admin | Role::Agent))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::hs256(b"test-secret", "crm", "crm-api")
    }

    #[test]
    fn a_token_issued_by_us_verifies_with_its_role() {
        let token = keys()
            .issue(Role::Agent, "agent-7", Duration::hours(1), Utc::now())
            .unwrap();
        let principal = keys().verify(&token).unwrap();
        assert_eq!(
            (principal.sub.as_str(), principal.role),
            ("agent-7", Role::Agent)
        );
    }

    #[test]
    fn a_token_from_another_issuer_is_refused() {
        let other = JwtKeys::hs256(b"test-secret", "someone-else", "crm-api");
        let token = other
            .issue(Role::Admin, "x", Duration::hours(1), Utc::now())
            .unwrap();
        assert!(matches!(
            keys().verify(&token),
            Err(AppError::Unauthenticated(_))
        ));
    }

    #[test]
    fn roles_parse_in_any_case() {
        assert_eq!("agent".parse::<Role>(), Ok(Role::Agent));
        assert_eq!("Partner".parse::<Role>(), Ok(Role::Partner));
        assert!("root".parse::<Role>().is_err());
    }
}
