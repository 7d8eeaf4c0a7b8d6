//! [`Action`], rules, and the [`Decision`] they produce.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::scan::{Category, Finding};

use super::target::LocalTarget;

/// What happens to a request.
///
/// Ordered from least to most restrictive: `Allow < Redact < RouteLocal < Block`. With
/// several matching rules the greatest action wins.
///
/// ```
/// use privacy_router::policy::Action;
///
/// assert!(Action::Allow < Action::Redact && Action::RouteLocal < Action::Block);
/// assert_eq!(Action::from_name("route_local"), Some(Action::RouteLocal));
/// assert_eq!(Action::Block.to_string(), "block");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Action {
    /// Forward to the external provider unchanged.
    Allow,
    /// Replace each finding with a typed placeholder, then forward externally.
    Redact,
    /// Send the request to the team's self-hosted model instead.
    RouteLocal,
    /// Refuse the request.
    Block,
}

impl Action {
    /// Every action, from least to most restrictive.
    pub const ALL: [Action; 4] = [
        Action::Allow,
        Action::Redact,
        Action::RouteLocal,
        Action::Block,
    ];

    /// The name used in policy files and audit records: `allow`, `redact`, `route_local`,
    /// `block`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Redact => "redact",
            Action::RouteLocal => "route_local",
            Action::Block => "block",
        }
    }

    /// Parses a name as written in policy files.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `[[rules]]` entry after loading.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    /// Empty: any category.
    pub(crate) categories: Vec<Category>,
    /// Empty: any detector.
    pub(crate) detectors: Vec<Arc<str>>,
    pub(crate) min_count: usize,
    pub(crate) action: Action,
    /// `file:line` of the rule, for explanations.
    pub(crate) origin: Arc<str>,
    /// The condition as written (`category = ["pii"], min_count = 2`): ids and
    /// categories only.
    pub(crate) condition: Arc<str>,
}

impl Rule {
    fn selects(&self, detector: &str, category: Category) -> bool {
        (self.categories.is_empty() || self.categories.contains(&category))
            && (self.detectors.is_empty() || self.detectors.iter().any(|d| &**d == detector))
    }
}

/// Which policy version made a decision: the team, the file that defines it, and a
/// SHA-256 over the bytes of that file, every file it extends and every dictionary they
/// load.
///
/// Two decisions with the same content hash were made by identical policy text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PolicyId {
    pub(crate) team: Arc<str>,
    pub(crate) file: Arc<str>,
    pub(crate) hash: Arc<str>,
}

impl PolicyId {
    /// The team name.
    pub fn team(&self) -> &str {
        &self.team
    }

    /// The policy file, relative to the policy directory (`payments.toml`).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The content hash, `sha256:` and 64 lowercase hex digits.
    pub fn content_hash(&self) -> &str {
        &self.hash
    }
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {})", self.team, self.file, self.hash)
    }
}

impl fmt::Debug for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why the action is what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Basis {
    /// At least one rule matched; the most restrictive one decided.
    Rules,
    /// No rule matched (for instance, nothing was found): the policy's `default`.
    Default,
    /// The request holds parts that cannot be scanned (images, audio, files) and the
    /// policy's `on_unscannable` was more restrictive than the rules.
    Unscannable,
    /// Inspection could not complete: the policy's `on_error`.
    Error,
}

/// What one detector contributed: its id, category, how many findings, and the most
/// restrictive action among the matching rules that select it (`None` if no matching rule
/// does). Never the values.
#[derive(Clone, Debug, PartialEq)]
pub struct Reason {
    detector: Arc<str>,
    category: Category,
    count: usize,
    action: Option<Action>,
}

impl Reason {
    /// The detector id or dictionary name.
    pub fn detector(&self) -> &str {
        &self.detector
    }

    /// Its category.
    pub fn category(&self) -> Category {
        self.category
    }

    /// How many findings it had.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The most restrictive action of a matching rule that selects this detector.
    pub fn action(&self) -> Option<Action> {
        self.action
    }
}

/// A rule that matched.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchedRule {
    origin: Arc<str>,
    condition: Arc<str>,
    action: Action,
    count: usize,
}

impl MatchedRule {
    /// Where the rule is written: `base.toml:12`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Its condition as written, for instance `category = ["pii"], min_count = 2`.
    pub fn condition(&self) -> &str {
        &self.condition
    }

    /// Its action.
    pub fn action(&self) -> Action {
        self.action
    }

    /// How many findings it selected.
    pub fn count(&self) -> usize {
        self.count
    }
}

/// The outcome for one request: the action, where to send it if it stays in-house, and
/// why.
///
/// `Debug` and `Display` show the action, the policy and detector ids with counts; a
/// decision holds no matched values and no prompt text, so it is safe to log.
///
/// ```
/// use privacy_router::policy::{Action, PolicySet};
///
/// let set = PolicySet::from_sources([(
///     "default.toml",
///     r#"
///         team = "default"
///         [[detector]]
///         id = "ticket"
///         category = "pii"
///         description = "Ticket number"
///         regex = '\bTCK-[0-9]{6}\b'
///         keywords = ["tck-"]
///         confidence = 0.9
///
///         [[rules]]
///         when = { detector = "ticket" }
///         action = "block"
///     "#,
/// )])?;
/// let decision = set.evaluate("default", "see TCK-123456");
/// assert_eq!(decision.action(), Action::Block);
/// assert_eq!(decision.reasons()[0].detector(), "ticket");
/// assert!(!format!("{decision:?}").contains("123456"));
/// # Ok::<(), privacy_router::policy::Diagnostics>(())
/// ```
#[derive(Clone)]
pub struct Decision {
    pub(crate) action: Action,
    pub(crate) basis: Basis,
    pub(crate) target: Option<Arc<LocalTarget>>,
    pub(crate) reasons: Vec<Reason>,
    pub(crate) rules: Vec<MatchedRule>,
    pub(crate) policy: PolicyId,
}

impl Decision {
    /// The action to take.
    pub fn action(&self) -> Action {
        self.action
    }

    /// Why the action is what it is.
    pub fn basis(&self) -> Basis {
        self.basis
    }

    /// The self-hosted target, when the action is [`Action::RouteLocal`] (loading
    /// guarantees a policy that can route locally has one).
    pub fn target(&self) -> Option<&LocalTarget> {
        self.target.as_deref()
    }

    /// One entry per detector that found something, in detector-id order.
    pub fn reasons(&self) -> &[Reason] {
        &self.reasons
    }

    /// The rules that matched, in the order they are written (base files first).
    pub fn matched_rules(&self) -> &[MatchedRule] {
        &self.rules
    }

    /// The policy version that decided.
    pub fn policy(&self) -> &PolicyId {
        &self.policy
    }
}

impl fmt::Debug for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decision")
            .field("action", &self.action)
            .field("basis", &self.basis)
            .field("target", &self.target.as_ref().map(|t| t.base_url()))
            .field("reasons", &self.reasons)
            .field("policy", &self.policy)
            .finish()
    }
}

/// `route_local (payments, sha256:…): payment-card (financial) x2`.
impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {})",
            self.action, self.policy.team, self.policy.hash
        )?;
        for (i, r) in self.reasons.iter().enumerate() {
            let sep = if i == 0 { ": " } else { ", " };
            write!(f, "{sep}{} ({}) x{}", r.detector, r.category, r.count)?;
        }
        Ok(())
    }
}

/// A team's decision procedure: rules, the default, and the fallbacks.
#[derive(Debug)]
pub(crate) struct Rules {
    pub(crate) rules: Vec<Rule>,
    pub(crate) default: Action,
    pub(crate) on_error: Action,
    pub(crate) on_unscannable: Action,
    pub(crate) target: Option<Arc<LocalTarget>>,
    pub(crate) id: PolicyId,
}

impl Rules {
    pub(crate) fn decide(&self, findings: &[Finding], unscannable: bool) -> Decision {
        let mut counts: BTreeMap<(&str, Category), usize> = BTreeMap::new();
        for f in findings {
            *counts.entry((f.detector(), f.category())).or_default() += 1;
        }
        let mut reasons: Vec<Reason> = counts
            .iter()
            .map(|(&(detector, category), &count)| Reason {
                detector: Arc::from(detector),
                category,
                count,
                action: None,
            })
            .collect();
        let mut matched = Vec::new();
        for rule in &self.rules {
            let count: usize = reasons
                .iter()
                .filter(|r| rule.selects(&r.detector, r.category))
                .map(|r| r.count)
                .sum();
            if count == 0 || count < rule.min_count {
                continue;
            }
            for r in reasons
                .iter_mut()
                .filter(|r| rule.selects(&r.detector, r.category))
            {
                r.action = r.action.max(Some(rule.action));
            }
            matched.push(MatchedRule {
                origin: Arc::clone(&rule.origin),
                condition: Arc::clone(&rule.condition),
                action: rule.action,
                count,
            });
        }
        let (mut action, mut basis) = match matched.iter().map(|m| m.action).max() {
            Some(a) => (a, Basis::Rules),
            None => (self.default, Basis::Default),
        };
        if unscannable && self.on_unscannable > action {
            action = self.on_unscannable;
            basis = Basis::Unscannable;
        }
        self.decision(action, basis, reasons, matched)
    }

    pub(crate) fn on_error(&self) -> Decision {
        self.decision(self.on_error, Basis::Error, Vec::new(), Vec::new())
    }

    fn decision(
        &self,
        action: Action,
        basis: Basis,
        reasons: Vec<Reason>,
        rules: Vec<MatchedRule>,
    ) -> Decision {
        Decision {
            action,
            basis,
            target: if action == Action::RouteLocal {
                self.target.clone()
            } else {
                None
            },
            reasons,
            rules,
            policy: self.id.clone(),
        }
    }
}
