// Package names says which characters of a name from the network may be shown or written to
// disk. Names come from strangers (announcements, folder entries): besides control
// characters, Unicode has invisible and direction-changing characters that make a name
// display as something it is not ("invoice\u202efdp.exe" shows as "invoiceexe.pdf"). The
// gossip validator rejects names with them; whatever writes or prints a name strips them.
//
// It knows nothing of the network or the disk, and never changes a name that is free of
// these characters.
package names
