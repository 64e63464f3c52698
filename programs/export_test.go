package programs

import "github.com/userbpf/userbpf/vm"

// SetTestHelpers makes programs opened afterwards run with the helper
// table f amends (nil: the normal table).
func SetTestHelpers(f func(*vm.HelperTable)) { testHelpers = f }
