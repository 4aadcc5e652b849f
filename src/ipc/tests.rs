//! In-process tests of the segment access, including under miri (which cannot map files or
//! run other processes): two views of one heap segment stand for two processes' mappings.
