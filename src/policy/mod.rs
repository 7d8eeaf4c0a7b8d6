//! Team policies: which detectors run for a team, and what their findings lead to.
//!
//! A policy directory holds one TOML file per team, plus shared bases they `extends`.
//! [`PolicySet::load_dir`] reads and checks the whole directory at once and compiles one
//! [`Scanner`](crate::scan::Scanner) per team (sharing the built-in detectors); a
//! [`PolicyHandle`] keeps the set in force and swaps in a new one on reload. For each
//! request, [`PolicySet::team`] finds the team's [`TeamPolicy`] (or the `default` team's),
//! which scans, applies the team's allowlist and returns a [`Decision`]: an [`Action`],
//! the [`LocalTarget`] when the request stays in-house, and the reasons (detector ids,
//! categories and counts, never values), stamped with the policy's [`PolicyId`] and
//! content hash. The file format is documented in `docs/policy.md`; [`json_schema`] gives
//! its JSON Schema.
//!
//! ```
//! use privacy_router::policy::{Action, PolicySet};
//!
//! let set = PolicySet::from_sources([(
//!     "default.toml",
//!     r#"
//!         team = "default"
//!
//!         [[detector]]
//!         id = "order-id"
//!         category = "pii"
//!         description = "Order numbers"
//!         regex = '\bORD-[0-9]{8}\b'
//!         keywords = ["ord-"]
//!         confidence = 0.9
//!
//!         [[rules]]
//!         when = { category = "pii" }
//!         action = "route_local"
//!
//!         [local]
//!         base_url = "http://llm.internal:8000/v1"
//!         models = { "*" = "llama-3.1-8b" }
//!     "#,
//! )])?;
//! let d = set.evaluate("anyone", "where is ORD-12345678?");
//! assert_eq!(d.action(), Action::RouteLocal);
//! assert_eq!(d.target().unwrap().base_url(), "http://llm.internal:8000/v1");
//! assert_eq!(d.reasons()[0].detector(), "order-id");
//! # Ok::<(), privacy_router::policy::Diagnostics>(())
//! ```
//!
//! # Diagnostics
//!
//! Loading never stops at the first problem. Each [`Diagnostic`] has a file, line and
//! column, and one of these stable codes:
//!
//! | code | meaning |
//! |---|---|
//! | `syntax` | the file is not valid TOML |
//! | `unknown-key` | a key the schema does not know (with a suggestion when close) |
//! | `wrong-type` | a value of the wrong type |
//! | `missing-key` | a required key is absent |
//! | `bad-name` | a team, file, dictionary or detector name is not `[a-z0-9_-]` |
//! | `out-of-range` | a number outside its range (`min_confidence`, `min_count`, `confidence`) |
//! | `unknown-category` | not one of pii, financial, secret, network, confidential |
//! | `unknown-action` | not one of allow, redact, route_local, block |
//! | `action-not-allowed` | a valid action where it makes no sense (`on_error = "allow"`) |
//! | `unknown-detector` | a selection or rule names a detector that does not exist |
//! | `duplicate-detector` | a team detector or dictionary reuses an id |
//! | `invalid-regex` | a detector or allowlist regex does not compile |
//! | `unknown-validator` | a team detector names a validator that does not exist |
//! | `invalid-detector` | a team detector is otherwise invalid |
//! | `example-failed` | a team detector's `must_match` / `must_not_match` example does not hold |
//! | `missing-dictionary` | a dictionary file cannot be read |
//! | `bad-allow` | an `[[allow]]` entry without exactly one of `literal`, `regex` |
//! | `bad-url` | `[local] base_url` is not an http(s) URL with a host (or holds credentials) |
//! | `unknown-api` | `[local] api` is not `openai` |
//! | `bad-timeout` | `[local] timeout` is not a duration such as `"30s"` |
//! | `conflicting-keys` | both `token_env` and `token_file` |
//! | `unknown-base` | `extends` names a file that does not exist |
//! | `extends-cycle` | `extends` leads back to the file |
//! | `no-local-target` | `route_local` is used but the team has no `[local]` target |
//! | `duplicate-team` | two files define the same team |
//! | `no-default-team` | no file defines the `default` team |
//! | `build-failed` | the team's scanner could not be compiled |
//! | `io` | a file or the directory cannot be read |
//! | `builtin` | the built-in detectors do not compile (a bug in the crate) |

mod decide;
mod diagnostic;
mod file;
mod load;
mod reload;
mod schema;
mod set;
mod target;
mod team;

pub use decide::{Action, Basis, Decision, MatchedRule, PolicyId, Reason};
pub use diagnostic::{Diagnostic, Diagnostics};
pub use reload::PolicyHandle;
pub use schema::json_schema;
pub use set::{DEFAULT_TEAM, PolicySet, TeamPolicy};
pub use target::{LocalApi, LocalTarget, TokenSource};
pub use team::{DEFAULT_TEAM_HEADER, Team, TeamResolver};
