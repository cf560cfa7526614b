package unixfs

// ImportMaxLinks is Import with a lower fan-out, so that tests can build deep
// trees from few chunks.
var ImportMaxLinks = importFile

// HAMTHash is the HAMT name hash.
var HAMTHash = hamtHash
