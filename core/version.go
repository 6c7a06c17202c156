package core

// APIVersion is the contract version every stack speaks and reports on its
// health endpoint (CONTRACT.md). Stacks name it; they do not restate it.
const APIVersion = "1.0.2"
