pub mod comprehend_server;
pub mod corpus;
