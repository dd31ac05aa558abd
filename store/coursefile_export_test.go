package store

// CheckPDFSizes is checkPDFSizes, for tests.
var CheckPDFSizes = checkPDFSizes
