package store

// StorageFull exposes storageFull to the tests.
var StorageFull = storageFull
