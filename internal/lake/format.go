package lake

import (
	"fmt"
	"strings"
)

// mysqlFormat converts a Trino date_format/date_parse format (MySQL style) to strftime.
func mysqlFormat(f string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(f) {
			return "", fmt.Errorf("date format %q ends with %%", f)
		}
		i++
		conv, ok := mysqlSpecs[f[i]]
		if !ok {
			return "", fmt.Errorf("date format %q: %%%c is not supported", f, f[i])
		}
		b.WriteString(conv)
	}
	return b.String(), nil
}

var mysqlSpecs = map[byte]string{
	'a': "%a", 'b': "%b", 'c': "%-m", 'd': "%d", 'e': "%-d", 'f': "%f", 'H': "%H", 'h': "%I",
	'I': "%I", 'i': "%M", 'j': "%j", 'k': "%-H", 'l': "%-I", 'M': "%B", 'm': "%m", 'p': "%p",
	'r': "%I:%M:%S %p", 'S': "%S", 's': "%S", 'T': "%H:%M:%S", 'v': "%V", 'W': "%A", 'w': "%w",
	'Y': "%Y", 'y': "%y", '%': "%%", 'u': "%W", 'U': "%U", 'x': "%G",
}

// jodaFormat converts a Trino format_datetime/parse_datetime format (Joda style) to strftime.
func jodaFormat(f string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(f); {
		c := f[i]
		if c == '\'' {
			j := strings.IndexByte(f[i+1:], '\'')
			if j < 0 {
				return "", fmt.Errorf("datetime format %q: unterminated quoted text", f)
			}
			lit := f[i+1 : i+1+j]
			if lit == "" {
				lit = "'"
			}
			b.WriteString(strings.ReplaceAll(lit, "%", "%%"))
			i += j + 2
			continue
		}
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			if c == '%' {
				b.WriteString("%%")
			} else {
				b.WriteByte(c)
			}
			i++
			continue
		}
		n := 1
		for i+n < len(f) && f[i+n] == c {
			n++
		}
		conv, ok := joda(c, n)
		if !ok {
			return "", fmt.Errorf("datetime format %q: %q is not supported", f, f[i:i+n])
		}
		b.WriteString(conv)
		i += n
	}
	return b.String(), nil
}

func joda(c byte, n int) (string, bool) {
	pick := func(short, long string) string {
		if n >= 2 {
			return long
		}
		return short
	}
	switch c {
	case 'y', 'Y', 'x':
		if n == 2 {
			return "%y", true
		}
		return "%Y", true
	case 'M':
		switch {
		case n >= 4:
			return "%B", true
		case n == 3:
			return "%b", true
		}
		return pick("%-m", "%m"), true
	case 'd':
		return pick("%-d", "%d"), true
	case 'H':
		return pick("%-H", "%H"), true
	case 'h':
		return pick("%-I", "%I"), true
	case 'm':
		return pick("%-M", "%M"), true
	case 's':
		return pick("%-S", "%S"), true
	case 'S':
		if n <= 3 {
			return "%g", true
		}
		return "%f", true
	case 'a':
		return "%p", true
	case 'E':
		if n >= 4 {
			return "%A", true
		}
		return "%a", true
	case 'D':
		return "%j", true
	case 'Z':
		return "%z", true
	case 'z':
		return "%Z", true
	}
	return "", false
}
