//! The frontend/backend wire protocol: frontend encoders and incremental backend framing.

mod backend;
pub mod frontend;

pub use backend::{
    Authentication, BackendMessage, CopyResponse, DEFAULT_MAX_FRAME_LEN, DataRow, FieldDescription,
    Framer, MAX_STARTUP_FRAME_LEN, RowDescription, TransactionStatus,
};
pub use frontend::EncodeError;
