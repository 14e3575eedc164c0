package cli

import "fmt"

// FlagError is a flag value that parsed but is not acceptable; BadFlag
// names Flag in its "invalid parameter for argument" line.
type FlagError struct {
	Name string // the flag as the user would type it, e.g. "--top-p"
	Msg  string
}

func (e *FlagError) Error() string { return e.Msg }

// Flag returns the offending flag.
func (e *FlagError) Flag() string { return e.Name }

// Errorf returns a *FlagError for flag with a formatted message.
func Errorf(flag, format string, a ...any) error {
	return &FlagError{Name: flag, Msg: fmt.Sprintf(format, a...)}
}
