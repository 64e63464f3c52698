package shm

// crashSite names a point in the allocator between two steps whose order is
// what makes it crash-safe: a process killed there must leave the region
// consistent, with at most one block (or one unpublished span) leaked.
type crashSite int

const (
	sitePopped         crashSite = iota // a block is off its free list, not yet recorded in flight
	siteInflight                        // the block is recorded in flight and zeroed, not yet returned
	sitePushLinked                      // Free: the block links to the list, the head does not point at it yet
	siteCarveReserved                   // a fresh span is reserved for a size class, not yet installed
	siteCarveInstalled                  // the span is the class's carving span, not yet described
	siteSpareDescribed                  // a span another process beat us to installing is a run, not yet free
	siteRunReserved                     // fresh spans are reserved for a run, not yet described
	siteRunDescribed                    // the run is described, not yet returned
	siteGrown                           // the file has grown, the header does not record it yet
	numCrashSites
)

var crashSiteNames = [numCrashSites]string{
	"popped", "inflight", "push-linked", "carve-reserved", "carve-installed", "spare-described",
	"run-reserved", "run-described", "grown",
}

func (s crashSite) String() string { return crashSiteNames[s] }

// crashHook, when set, is called at every crash site. Only tests set it: a
// child process kills itself from it to prove that dying at that point
// loses at most what the allocator promises.
var crashHook func(crashSite)

func crashPoint(s crashSite) {
	if crashHook != nil {
		crashHook(s)
	}
}
