//go:build !linux

package ggml

// AdviseHugePages does nothing outside Linux (see hugepages_linux.go).
func (buf *Buffer) AdviseHugePages() {}
