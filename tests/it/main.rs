//! The integration tests: one binary, one module per area.

mod accuracy;
mod audit;
mod cli;
mod corpus;
mod detectors;
mod heldout;
mod layer;
mod local_model;
mod policy;
mod properties;
mod proxy;
mod upstream;
