//! README.md's journal example is `examples/restart.rs`, word for word (the README block is not
//! a doctest: ringmq's doctests run under miri, which cannot touch files).

#[test]
fn the_readme_shows_the_restart_example() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/restart.rs"))
            .unwrap();
    // The example's code: everything after its leading `//!` comment and the blank line.
    let code = example
        .split_once("\n\n")
        .map(|(_, code)| code)
        .expect("a comment, a blank line, the code");
    let section = readme
        .split_once("## Durable: the journal")
        .expect("the section")
        .1;
    let block = section
        .split_once("```rust,ignore\n")
        .and_then(|(_, rest)| rest.split_once("```\n"))
        .expect("the block")
        .0;
    assert_eq!(
        block, code,
        "README.md and journal/examples/restart.rs differ"
    );
}
