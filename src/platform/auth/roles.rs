//! The three roles, and roles read from an identity provider's claims: a dotted claim path, a
//! map from the hospital's group names to the service's roles, and a default for a signed-in
//! person with no mapped group.

use serde_json::Value;

/// Roles, each granting what the ones before it grant.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Organizer,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Organizer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Organizer => "organizer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// Where the groups or roles sit in a token: `roles`, `groups`, `realm_access.roles`,
/// `resource_access.lhs-rounds.roles`. Each segment is one key of a JSON object; a key that itself
/// contains a dot (Auth0's `https://example.org/roles`) cannot be named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath(Vec<String>);

impl ClaimPath {
    pub fn parse(text: &str) -> Result<ClaimPath, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the claim path is empty".to_owned());
        }
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.iter().any(|s| s.is_empty() || s.trim() != s) {
            return Err(format!(
                "`{text}` is not a dotted path of claim names (like realm_access.roles); an \
                 empty segment or spaces around a dot are not allowed, and a claim whose name \
                 itself contains a dot cannot be named"
            ));
        }
        Ok(ClaimPath(segments))
    }

    /// The value at this path, if every segment names a key of an object.
    pub fn find<'a>(&self, claims: &'a Value) -> Option<&'a Value> {
        self.0
            .iter()
            .try_fold(claims, |value, segment| value.as_object()?.get(segment))
    }
}

impl std::fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

impl Default for ClaimPath {
    /// `roles`: where the shared-secret and PEM modes read `viewer`, `organizer` or `admin`.
    fn default() -> Self {
        ClaimPath(vec!["roles".to_owned()])
    }
}

/// `LHS-Rounds-Admins=admin,LHS-Rounds-Organizers=organizer`: the provider's names (matched
/// exactly, case included) and the role each grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleMap(Vec<(String, Role)>);

impl RoleMap {
    pub fn parse(text: &str) -> Result<RoleMap, String> {
        let mut entries: Vec<(String, Role)> = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            // The last `=`: a role name never holds one, a group name (an LDAP DN) might.
            let Some((name, role)) = entry.rsplit_once('=') else {
                return Err(format!("`{entry}` is not NAME=ROLE"));
            };
            let (name, role) = (name.trim(), role.trim());
            if name.is_empty() {
                return Err(format!("`{entry}` names no group or role of the provider"));
            }
            // The service's role names in any case (`Admin`); the provider's names exactly.
            let Some(role) = Role::parse(&role.to_ascii_lowercase()) else {
                return Err(format!(
                    "`{entry}`: the role must be viewer, organizer or admin"
                ));
            };
            match entries.iter().find(|(existing, _)| existing == name) {
                Some((_, earlier)) if *earlier != role => {
                    return Err(format!(
                        "`{name}` is mapped twice, to {} and to {}",
                        earlier.as_str(),
                        role.as_str()
                    ))
                }
                Some(_) => {}
                None => entries.push((name.to_owned(), role)),
            }
        }
        Ok(RoleMap(entries))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn get(&self, name: &str) -> Option<Role> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, r)| *r)
    }

    /// The role one of the provider's values grants. With no map at all, the service's own role
    /// names count as they are (tokens shaped like the shared-secret mode's keep working); with
    /// a map, only mapped names count, so that a provider role that happens to be called `admin`
    /// grants nothing unless the map says so.
    fn role_of(&self, value: &str) -> Option<Role> {
        if self.is_empty() {
            Role::parse(value)
        } else {
            self.get(value)
        }
    }
}

/// The highest role that the value at `path` grants, or `default` when it grants none.
///
/// The value may be a string (one name: it is not split) or an array; entries that are not
/// strings are ignored rather than refusing the token, as a missing claim is.
pub fn resolve(
    claims: &Value,
    path: &ClaimPath,
    map: &RoleMap,
    default: Option<Role>,
) -> Option<Role> {
    let mapped = match path.find(claims) {
        Some(Value::String(one)) => map.role_of(one),
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|v| map.role_of(v))
            .max(),
        _ => None,
    };
    mapped.or(default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(text: &str) -> ClaimPath {
        ClaimPath::parse(text).expect("a valid path")
    }

    #[test]
    fn paths_with_hyphens_are_read_and_empty_segments_refused() {
        let claims = json!({"resource_access": {"lhs-rounds": {"roles": ["a"]}}});
        assert_eq!(
            path("resource_access.lhs-rounds.roles").find(&claims),
            Some(&json!(["a"]))
        );
        assert!(ClaimPath::parse("realm_access..roles").is_err());
        assert!(ClaimPath::parse(".roles").is_err());
        assert!(ClaimPath::parse("").is_err());
        assert!(ClaimPath::parse("roles.").is_err());
        assert_eq!(
            path("groups").find(&json!({"groups": "x"})),
            Some(&json!("x"))
        );
        assert_eq!(path("a.b").find(&json!({"a": ["b"]})), None);
    }

    #[test]
    fn role_maps_parse_and_refuse_mistakes() {
        let map = RoleMap::parse(" LHS-Rounds-Admins=admin , LHS-Rounds-Organizers=organizer,")
            .expect("valid");
        assert_eq!(map.get("LHS-Rounds-Admins"), Some(Role::Admin));
        assert_eq!(map.get("lhs-rounds-admins"), None, "case matters");
        assert!(RoleMap::parse("").expect("empty is valid").is_empty());
        assert!(RoleMap::parse("Admins").is_err());
        assert!(RoleMap::parse("=admin").is_err());
        assert!(RoleMap::parse("Admins=root").is_err());
        assert!(RoleMap::parse("A=admin,A=viewer").is_err());
        assert!(RoleMap::parse("A=admin,A=admin").is_ok());
        assert_eq!(
            RoleMap::parse("A=Organizer").expect("valid").get("A"),
            Some(Role::Organizer)
        );
        assert_eq!(
            RoleMap::parse("cn=x=admin").expect("valid").get("cn=x"),
            Some(Role::Admin)
        );
    }

    #[test]
    fn the_highest_mapped_role_wins_and_the_default_fills_in() {
        let map = RoleMap::parse("Orgs=organizer,Admins=admin,Staff=viewer").expect("valid");
        let roles = path("groups");
        let claims = json!({"groups": ["Staff", "Admins", "Orgs", 7]});
        assert_eq!(resolve(&claims, &roles, &map, None), Some(Role::Admin));
        let claims = json!({"groups": "Orgs"});
        assert_eq!(resolve(&claims, &roles, &map, None), Some(Role::Organizer));
        let claims = json!({"groups": ["Nurses"]});
        assert_eq!(
            resolve(&claims, &roles, &map, Some(Role::Viewer)),
            Some(Role::Viewer)
        );
        assert_eq!(resolve(&claims, &roles, &map, None), None);
        assert_eq!(resolve(&json!({}), &roles, &map, None), None);
        // With a map, the service's own names grant nothing by themselves.
        let claims = json!({"groups": ["admin"]});
        assert_eq!(resolve(&claims, &roles, &map, None), None);
    }

    #[test]
    fn without_a_map_the_service_role_names_count_literally() {
        let map = RoleMap::default();
        let roles = ClaimPath::default();
        let claims = json!({"roles": ["viewer", "organizer", "Admin"]});
        assert_eq!(resolve(&claims, &roles, &map, None), Some(Role::Organizer));
        let claims = json!({"roles": "admin"});
        assert_eq!(resolve(&claims, &roles, &map, None), Some(Role::Admin));
    }
}
