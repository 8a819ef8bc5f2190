package lake

import "testing"

func TestSkipValueStrings(t *testing.T) {
	for in, end := range map[string]int{`"a"x`: 3, `"a\"b"x`: 6, `"a\\"x`: 5, `"\\\""x`: 6, `{"k":"}\"{"}x`: 12, `"\\\\`: -1, `"abc`: -1} {
		if got := skipValue([]byte(in), 0); got != end {
			t.Errorf("skipValue(%s) = %d, want %d", in, got, end)
		}
	}
}
