package main

// textPending bounds the text held per run while -f text groups each
// session's records behind its SESSION block.
const textPending = 16 << 20
