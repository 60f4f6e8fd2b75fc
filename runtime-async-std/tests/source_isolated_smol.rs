//! The source's integration suite (shared with every runtime), the tests that need clusters of their own or the process to themselves, on smol.
//! Each runtime has binaries of its own: the suite names databases after the test alone.

#[macro_use]
#[path = "../../driver/tests/suite/mod.rs"]
mod suite;

use pgcdc_async_std::SmolRuntime;

macro_rules! tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                smol::block_on(suite::$module::$name::<SmolRuntime>());
            }
        )*
    };
}

isolated_tests!(tests);
