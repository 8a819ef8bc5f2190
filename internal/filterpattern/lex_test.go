package filterpattern

import (
	"fmt"
	"strings"
	"testing"
)

type lexTest struct {
	name  string
	input string
	items string // items as typ:val, space-separated
}

// itemNames are short names for items in lexTests.
var itemNames = map[itemType]string{
	itemError: "error", itemEOF: "EOF", itemLeftBrace: "{", itemRightBrace: "}",
	itemLeftBracket: "[", itemRightBracket: "]", itemLeftParen: "(", itemRightParen: ")",
	itemComma: ",", itemAnd: "&&", itemOr: "||", itemOp: "op", itemString: "str",
	itemRegex: "re", itemWord: "word", itemRoot: "$", itemProperty: "prop",
	itemQuotedProperty: "qprop", itemIndex: "idx", itemWildcard: "*",
	itemQuestion: "?", itemMinus: "-",
}

var lexTests = []lexTest{
	{"empty", "", "EOF"},
	{"terms", ` ERROR ?"a b" -x y-z`, `word:ERROR ?:? str:"a b" -:- word:x word:y-z EOF`},
	{"regex", `%a b%`, `re:%a b% EOF`},
	{"lone percent", `100% done`, `word:100% word:done EOF`},
	{"json", `{$.a.b[0]['c.d'].*=x&&($.e!=%f%)||$.g IS NULL}`,
		`{:{ $:$ prop:a prop:b idx:0 qprop:['c.d'] *:.* op:= word:x &&:&& (:( $:$ prop:e op:!= re:%f% ):) ||:|| $:$ prop:g word:IS word:NULL }:} EOF`},
	{"json dotted bracket", `{ $.['x'] >= -1e3 }`, `{:{ $:$ qprop:.['x'] op:>= word:-1e3 }:} EOF`},
	{"json word stops", `{ $.a = b)c }`, `{:{ $:$ prop:a op:= word:b ):) word:c }:} EOF`},
	{"json selector ends at space", `{ $.a .b }`, `{:{ $:$ prop:a word:.b }:} EOF`},
	{"delimited", `[a, ..., b = "x" || b <= 3,]`, `[:[ word:a ,:, word:... ,:, word:b op:= str:"x" ||:|| word:b op:<= word:3 ,:, ]:] EOF`},
	{"unterminated string", `{ $.a = "x }`, `{:{ $:$ prop:a op:= error:unterminated quoted string`},
	{"single amp", `{ $.a = 1 & }`, `{:{ $:$ prop:a op:= word:1 error:expected "&&"`},
	{"bad selector", `{ $.[x] }`, `{:{ $:$ error:expected quoted property name after '.['`},
	{"index item starts at bracket", `{ $.a[12] }`, `{:{ $:$ prop:a idx:12@5 }:} EOF`},
}

func TestLex(t *testing.T) {
	for _, tt := range lexTests {
		t.Run(tt.name, func(t *testing.T) {
			l := lex(tt.input)
			var got []string
			for {
				it := l.nextItem()
				s := fmt.Sprintf("%s:%s", itemNames[it.typ], it.val)
				if it.typ == itemEOF {
					s = "EOF"
				}
				if strings.Contains(tt.items, "@") && it.typ == itemIndex {
					s += fmt.Sprintf("@%d", it.pos)
				}
				got = append(got, s)
				if it.typ == itemEOF || it.typ == itemError {
					break
				}
			}
			if g := strings.Join(got, " "); g != tt.items {
				t.Errorf("lex(%q):\n got %s\nwant %s", tt.input, g, tt.items)
			}
		})
	}
}
