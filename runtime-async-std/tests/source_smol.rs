//! The source's integration suite (shared with every runtime), the tests on the binary's shared cluster, on smol.
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

shared_cluster_tests!(tests);
