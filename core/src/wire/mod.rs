//! The frontend/backend wire protocol: frontend encoders and incremental backend framing.

mod backend;
pub mod frontend;

pub use backend::{
    Authentication, BackendMessage, CopyResponse, DataRow, FieldDescription, Framer,
    RowDescription, TransactionStatus, DEFAULT_MAX_FRAME_LEN,
};
pub use frontend::EncodeError;
