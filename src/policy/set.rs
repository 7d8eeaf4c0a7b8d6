//! [`PolicySet`] and [`TeamPolicy`]: the loaded policies, and decisions from them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::scan::{Finding, Scanner};

use super::decide::{Action, Decision, PolicyId, Rules};
use super::diagnostic::Diagnostics;
use super::file::AllowEntry;
use super::load;
use super::target::LocalTarget;

/// The name of the team whose policy applies to requests from unknown or unnamed teams.
pub const DEFAULT_TEAM: &str = "default";

/// Every team's policy, loaded from one directory and checked as a whole.
///
/// A set always has a [`DEFAULT_TEAM`]: requests from a team without a policy of its own
/// get that one, so there is no request without a policy.
///
/// # Errors
///
/// Loading reports every problem in every file at once ([`Diagnostics`]), each with its
/// file, line, column, a stable code and a rendered snippet.
///
/// # Performance
///
/// Each team compiles its own [`Scanner`], but the compiled built-in detectors are shared
/// by all of them (one copy per process): a team costs its prefilter automata, its own
/// detectors and its dictionaries. Measured (`docs/policy.md`, release build, 273
/// built-in detectors): the built-in library compiles once in 32–49 ms and 11.6 MiB;
/// 50 teams extending one base with every category, each with a 200-term dictionary and
/// a team detector, then load in 205–274 ms and 24 MiB, about 5 ms and 0.5 MiB a team.
///
/// ```
/// use privacy_router::policy::{Action, PolicySet};
///
/// let set = PolicySet::from_sources([
///     ("base.toml", r#"
///         [[rules]]
///         when = { category = "secret" }
///         action = "block"
///     "#),
///     ("default.toml", "extends = \"base\"\nteam = \"default\"\n"),
/// ])?;
/// // Unknown teams get the default policy.
/// assert_eq!(set.team("marketing").name(), "default");
/// assert_eq!(set.evaluate("marketing", "Summarise this memo").action(), Action::Allow);
/// # Ok::<(), privacy_router::policy::Diagnostics>(())
/// ```
pub struct PolicySet {
    pub(crate) teams: BTreeMap<String, TeamPolicy>,
    pub(crate) digest: String,
}

impl PolicySet {
    /// Loads every `*.toml` file directly inside `dir` (subdirectories such as `terms/`
    /// and `tests/` are not policies).
    ///
    /// # Errors
    ///
    /// Every problem found, in every file: see the module documentation for the codes.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<PolicySet, Diagnostics> {
        load::load_dir(dir.as_ref())
    }

    /// Loads policies from memory: `(file name, text)` pairs such as
    /// `("payments.toml", "...")`. Dictionary and token file paths are relative to the
    /// current directory. Meant for tests and embedding.
    ///
    /// # Errors
    ///
    /// As [`load_dir`](Self::load_dir).
    pub fn from_sources<I, N, T>(sources: I) -> Result<PolicySet, Diagnostics>
    where
        I: IntoIterator<Item = (N, T)>,
        N: AsRef<str>,
        T: AsRef<str>,
    {
        load::from_sources(
            sources
                .into_iter()
                .map(|(n, t)| (n.as_ref().to_string(), t.as_ref().to_string()))
                .collect(),
        )
    }

    /// The policy for `team`, or the default team's when `team` has none.
    pub fn team(&self, team: &str) -> &TeamPolicy {
        self.get(team).unwrap_or_else(|| self.default_team())
    }

    /// The policy for exactly `team`, if it has one.
    pub fn get(&self, team: &str) -> Option<&TeamPolicy> {
        self.teams.get(team)
    }

    /// The default team's policy.
    pub fn default_team(&self) -> &TeamPolicy {
        self.teams
            .get(DEFAULT_TEAM)
            .expect("loading rejects a set without a default team")
    }

    /// The team names, sorted.
    pub fn teams(&self) -> impl Iterator<Item = &str> + '_ {
        self.teams.keys().map(String::as_str)
    }

    /// The decision for `findings` (already filtered by the team's allowlist: see
    /// [`TeamPolicy::scan`]) under `team`'s policy (or the default team's).
    pub fn decide(&self, team: &str, findings: &[Finding]) -> Decision {
        self.team(team).decide(findings)
    }

    /// Scans `text` with the team's scanner, drops allowlisted findings and decides.
    pub fn evaluate(&self, team: &str, text: &str) -> Decision {
        self.team(team).evaluate(text)
    }

    /// A SHA-256 over every team's content hash: changes whenever any policy, base or
    /// dictionary changes.
    pub fn digest(&self) -> &str {
        &self.digest
    }
}

impl fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicySet")
            .field("teams", &self.teams.keys().collect::<Vec<_>>())
            .field("digest", &self.digest)
            .finish()
    }
}

/// One team's policy: its scanner, allowlist and rules.
///
/// `Debug` shows ids, counts and the target; never allowlisted values or terms.
pub struct TeamPolicy {
    pub(crate) scanner: Scanner,
    pub(crate) allow: Allowlist,
    pub(crate) rules: Rules,
}

impl TeamPolicy {
    /// The team name.
    pub fn name(&self) -> &str {
        self.rules.id.team()
    }

    /// The policy's id and content hash.
    pub fn id(&self) -> &PolicyId {
        &self.rules.id
    }

    /// The scanner with this team's detectors and dictionaries.
    pub fn scanner(&self) -> &Scanner {
        &self.scanner
    }

    /// The self-hosted target, if the policy names one.
    pub fn target(&self) -> Option<&LocalTarget> {
        self.rules.target.as_deref()
    }

    /// The action when no rule matches.
    pub fn default_action(&self) -> Action {
        self.rules.default
    }

    /// The action when inspection cannot complete: `route_local` or `block`.
    pub fn on_error(&self) -> Action {
        self.rules.on_error
    }

    /// The action for requests with parts that cannot be scanned.
    pub fn on_unscannable(&self) -> Action {
        self.rules.on_unscannable
    }

    /// Scans `text` and drops the findings whose value the team allowlists.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let mut findings = self.scanner.scan(text);
        self.retain_not_allowed(text, &mut findings);
        findings
    }

    /// Scans `text` as the value of `label` ([`Scanner::scan_labelled`]) and drops the
    /// findings whose value the team allowlists.
    pub fn scan_labelled(&self, label: &str, text: &str) -> Vec<Finding> {
        let mut findings = self.scanner.scan_labelled(label, text);
        self.retain_not_allowed(text, &mut findings);
        findings
    }

    /// Drops from `findings` (of a scan of `text`) those whose value the team allowlists.
    pub fn retain_not_allowed(&self, text: &str, findings: &mut Vec<Finding>) {
        if !self.allow.is_empty() {
            findings.retain(|f| text.get(f.span()).is_none_or(|v| !self.allow.allows(v)));
        }
    }

    /// The decision for `findings`: the most restrictive matching rule, or the default.
    pub fn decide(&self, findings: &[Finding]) -> Decision {
        self.rules.decide(findings, false)
    }

    /// The decision for a request that also holds parts that cannot be scanned: as
    /// [`decide`](Self::decide), raised to `on_unscannable` if that is more restrictive.
    pub fn decide_with_unscannable(&self, findings: &[Finding]) -> Decision {
        self.rules.decide(findings, true)
    }

    /// The decision when inspection could not complete: `on_error`.
    pub fn decide_error(&self) -> Decision {
        self.rules.on_error()
    }

    /// [`scan`](Self::scan), then [`decide`](Self::decide).
    pub fn evaluate(&self, text: &str) -> Decision {
        self.decide(&self.scan(text))
    }
}

impl fmt::Debug for TeamPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TeamPolicy")
            .field("id", &self.rules.id)
            .field("scanner", &self.scanner)
            .field("allow", &self.allow)
            .field("rules", &self.rules.rules.len())
            .field("default", &self.rules.default)
            .field("on_error", &self.rules.on_error)
            .field("on_unscannable", &self.rules.on_unscannable)
            .field("target", &self.target().map(LocalTarget::base_url))
            .finish()
    }
}

/// A team's `[[allow]]` entries. Literals are compared exactly; regexes must match the
/// whole value.
pub(crate) struct Allowlist {
    literals: std::collections::HashSet<String>,
    regexes: Vec<regex::Regex>,
}

impl Allowlist {
    pub(crate) fn new(entries: Vec<&AllowEntry>) -> Allowlist {
        let mut literals = std::collections::HashSet::new();
        let mut regexes = Vec::new();
        for e in entries {
            match e {
                AllowEntry::Literal(l) => {
                    literals.insert(l.clone());
                }
                AllowEntry::Regex(r) => regexes.push(r.clone()),
            }
        }
        Allowlist { literals, regexes }
    }

    fn is_empty(&self) -> bool {
        self.literals.is_empty() && self.regexes.is_empty()
    }

    fn allows(&self, value: &str) -> bool {
        self.literals.contains(value) || self.regexes.iter().any(|r| r.is_match(value))
    }
}

impl fmt::Debug for Allowlist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Allowlist")
            .field("literals", &self.literals.len())
            .field("regexes", &self.regexes.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared<T: Send + Sync + 'static>() {}

    #[test]
    fn policies_and_decisions_cross_threads() {
        shared::<PolicySet>();
        shared::<TeamPolicy>();
        shared::<Decision>();
        shared::<super::super::PolicyHandle>();
    }
}
