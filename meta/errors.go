package meta

import (
	"errors"
	iofs "io/fs"
	"syscall"
)

// Errors a command or a read can return. They cross the network as Codes
// (never as strings to match) and match the io/fs sentinels where one exists,
// so the NFS layer maps them without knowing this package.
var (
	ErrNotExist    = newCodedError(CodeNotExist, "no such file or directory", iofs.ErrNotExist)
	ErrExist       = newCodedError(CodeExist, "file exists", iofs.ErrExist)
	ErrNotEmpty    = newCodedError(CodeNotEmpty, "directory not empty", nil)
	ErrNotDir      = newCodedError(CodeNotDir, "not a directory", nil)
	ErrIsDir       = newCodedError(CodeIsDir, "is a directory", nil)
	ErrInvalid     = newCodedError(CodeInvalid, "invalid argument", iofs.ErrInvalid)
	ErrNameTooLong = newCodedError(CodeNameTooLong, "file name too long", nil)
	ErrConflict    = newCodedError(CodeConflict, "chunk version moved on; retry the write", nil)
	ErrNoVolume    = newCodedError(CodeNoVolume, "no such volume", iofs.ErrNotExist)
	ErrVolumeExist = newCodedError(CodeVolumeExist, "volume exists", iofs.ErrExist)
	ErrNoLeader    = newCodedError(CodeNoLeader, "no metadata leader; retry later", nil)
	ErrLoop        = newCodedError(CodeLoop, "cannot move a directory into itself", iofs.ErrInvalid)
	// ErrQuota: the change would take a volume past its byte or file quota.
	// It matches syscall.EDQUOT, which the gateway answers NFS3ERR_DQUOT.
	ErrQuota = newCodedError(CodeQuota, "volume quota exceeded", syscall.EDQUOT)
)

// Code identifies an error on the wire and in the duplicate-request table.
type Code uint16

const (
	CodeOK Code = iota
	CodeNotExist
	CodeExist
	CodeNotEmpty
	CodeNotDir
	CodeIsDir
	CodeInvalid
	CodeNameTooLong
	CodeConflict
	CodeNoVolume
	CodeVolumeExist
	CodeNoLeader
	CodeLoop
	CodeInternal
	// Codes are part of the wire format and of the duplicate-request table:
	// new ones go at the end.
	CodeQuota
)

// CodedError is an error with a stable wire code.
type CodedError struct {
	Code Code
	msg  string
	is   error
}

func newCodedError(c Code, msg string, is error) *CodedError {
	return &CodedError{Code: c, msg: "meta: " + msg, is: is}
}

func (e *CodedError) Error() string { return e.msg }

// Is lets errors.Is(err, io/fs.ErrNotExist) and friends match.
func (e *CodedError) Is(target error) bool {
	if t, ok := target.(*CodedError); ok {
		return t.Code == e.Code
	}
	return e.is != nil && target == e.is
}

// sentinel returns the error of a wire code, or nil for an unknown one.
func sentinel(c Code) *CodedError {
	for _, e := range []*CodedError{ErrNotExist, ErrExist, ErrNotEmpty, ErrNotDir, ErrIsDir, ErrInvalid,
		ErrNameTooLong, ErrConflict, ErrNoVolume, ErrVolumeExist, ErrNoLeader, ErrLoop, ErrQuota} {
		if e.Code == c {
			return e
		}
	}
	return nil
}

// CodeOf returns the wire code of err (CodeInternal for foreign errors).
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	var ce *CodedError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return CodeInternal
}

// ErrorFor turns a wire code and message back into an error that matches the
// sentinel of that code.
func ErrorFor(c Code, msg string) error {
	if c == CodeOK {
		return nil
	}
	if e := sentinel(c); e != nil {
		if msg == "" || msg == e.msg {
			return e
		}
		return &wrapped{e: e, msg: msg}
	}
	return errors.New(msg)
}

type wrapped struct {
	e   *CodedError
	msg string
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.e }
