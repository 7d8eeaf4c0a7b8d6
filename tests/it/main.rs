//! The integration tests: one binary, one module per area.

mod accuracy;
mod cli;
mod corpus;
mod detectors;
mod layer;
mod policy;
mod properties;
mod upstream;
