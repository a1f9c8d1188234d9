//! `UNDERSIGN_TEST_POSTGRES=skip` sets the cfg `undersign_skip_postgres`, which marks the
//! PostgreSQL tests `#[ignore]`: libtest has no way to ignore a test at run time, and a test
//! that returns early is counted as passed.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=UNDERSIGN_TEST_POSTGRES");
    println!("cargo::rustc-check-cfg=cfg(undersign_skip_postgres)");
    match std::env::var("UNDERSIGN_TEST_POSTGRES").as_deref() {
        Ok("skip") => println!("cargo::rustc-cfg=undersign_skip_postgres"),
        Ok("") | Err(std::env::VarError::NotPresent) => {}
        // A typo must not quietly run (or skip) what the user did not ask for.
        Ok(other) => println!(
            "cargo::error=UNDERSIGN_TEST_POSTGRES is {other:?}; the only value it takes is `skip` \
             (leave it unset to run the PostgreSQL tests)"
        ),
        Err(std::env::VarError::NotUnicode(_)) => {
            println!("cargo::error=UNDERSIGN_TEST_POSTGRES is not UTF-8; the only value it takes is `skip`")
        }
    }
}
