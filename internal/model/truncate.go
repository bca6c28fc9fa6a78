package model

// Truncate shortens s to at most n bytes, cut on a character boundary and
// marked with "…", for echoing client input in error messages and logs.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := 0
	for i := range s {
		if i > n {
			break
		}
		cut = i
	}
	return s[:cut] + "…"
}
