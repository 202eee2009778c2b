package resp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The reference decoder: an independent, recursive, whole-buffer RESP
// decoder (regular expressions and strconv, no state machine) with the
// Scanner's documented acceptance rules. The fuzz test compares the two.

var (
	errRefIncomplete = errors.New("incomplete")
	errRefBad        = errors.New("bad")
)

type refNode struct {
	kind  Kind
	text  []byte // line text or payload
	n     int64  // count (maps: pairs*2), length, line text length; -1: RESP2 null
	ival  int64
	elems []*refNode // attributes excluded
	size  int64
}

// Prefix patterns of a line's text: a text that does not match cannot be
// completed into a valid line.
var refPrefix = map[Kind]*regexp.Regexp{
	SimpleString: regexp.MustCompile(`^[^\r\n]*$`),
	SimpleError:  regexp.MustCompile(`^[^\r\n]*$`),
	Double:       regexp.MustCompile(`^[0-9.eE+\-infa]*$`),
	Boolean:      regexp.MustCompile(`^[tf]?$`),
	Null:         regexp.MustCompile(`^$`),
	BigNumber:    regexp.MustCompile(`^[+-]?[0-9]*$`),
	Integer:      regexp.MustCompile(`^[+-]?[0-9]*$`),
}

var refLength = regexp.MustCompile(`^-?[0-9]*$`)

func refValidPrefix(k Kind, text []byte) bool {
	if re, ok := refPrefix[k]; ok {
		if !re.Match(text) {
			return false
		}
		if k == Integer {
			return refDigitsFit(text)
		}
		return true
	}
	return refLength.Match(text) && refDigitsFit(text)
}

// refDigitsFit reports whether the number so far fits an int64.
func refDigitsFit(text []byte) bool {
	digits := strings.TrimLeft(string(text), "+-")
	if digits == "" {
		return true
	}
	_, err := strconv.ParseInt(string(text), 10, 64)
	return err == nil
}

type refDec struct {
	b     []byte
	pos   int
	depth int
}

func (d *refDec) line(k Kind) ([]byte, error) {
	rest := d.b[d.pos:]
	cr := bytes.IndexByte(rest, '\r')
	lf := bytes.IndexByte(rest, '\n')
	if lf >= 0 && (cr < 0 || lf < cr) {
		return nil, errRefBad // a line feed without carriage return
	}
	if cr < 0 {
		if !refValidPrefix(k, rest) {
			return nil, errRefBad
		}
		return nil, errRefIncomplete
	}
	text := rest[:cr]
	if !refValidPrefix(k, text) {
		return nil, errRefBad
	}
	if cr+1 >= len(rest) {
		return nil, errRefIncomplete
	}
	if rest[cr+1] != '\n' {
		return nil, errRefBad
	}
	d.pos += cr + 2
	return text, nil
}

// one decodes one element; nested attributes before it are dropped, a
// top-level attribute is returned as the frame.
func (d *refDec) one(top bool) (*refNode, error) {
	start := d.pos
	if d.pos >= len(d.b) {
		return nil, errRefIncomplete
	}
	k := Kind(d.b[d.pos])
	if !strings.ContainsRune("+-:$*%~>|=,#(_!", rune(k)) {
		return nil, errRefBad
	}
	d.pos++
	text, err := d.line(k)
	if err != nil {
		return nil, err
	}
	nd := &refNode{kind: k, text: text, n: int64(len(text))}
	switch k {
	case Double, Boolean:
		if len(text) == 0 || k == Boolean && len(text) != 1 {
			return nil, errRefBad
		}
	case BigNumber:
		if len(strings.TrimLeft(string(text), "+-")) == 0 {
			return nil, errRefBad
		}
	case Integer:
		v, err := strconv.ParseInt(string(text), 10, 64)
		if err != nil {
			return nil, errRefBad
		}
		nd.ival = v
	case BulkString, Verbatim, BulkError, Array, Map, Set, Push, Attribute:
		v, err := strconv.ParseInt(string(text), 10, 64)
		if err != nil {
			return nil, errRefBad
		}
		if len(text) > 0 && text[0] == '-' && (v != -1 || (k != BulkString && k != Array)) {
			return nil, errRefBad
		}
		nd.n = v
		nd.text = nil
	}
	switch k {
	case BulkString, Verbatim, BulkError:
		if nd.n > MaxBulkLen || k == Verbatim && nd.n < 4 {
			return nil, errRefBad
		}
		if nd.n >= 0 {
			avail := d.b[d.pos:]
			if k == Verbatim && len(avail) >= 4 && avail[3] != ':' {
				return nil, errRefBad
			}
			if int64(len(avail)) < nd.n {
				return nil, errRefIncomplete
			}
			nd.text = avail[:nd.n]
			after := avail[nd.n:]
			if len(after) >= 1 && after[0] != '\r' || len(after) >= 2 && after[1] != '\n' {
				return nil, errRefBad
			}
			if len(after) < 2 {
				return nil, errRefIncomplete
			}
			d.pos += int(nd.n) + 2
		}
	case Array, Map, Set, Push, Attribute:
		if nd.n > MaxAggregateLen {
			return nil, errRefBad
		}
		if k == Map || k == Attribute {
			nd.n *= 2
			if nd.n > MaxAggregateLen {
				return nil, errRefBad
			}
		}
		if nd.n > 0 {
			if d.depth >= MaxDepth {
				return nil, errRefBad
			}
			d.depth++
			for i := int64(0); i < nd.n; i++ {
				c, err := d.one(false)
				if err != nil {
					return nil, err
				}
				nd.elems = append(nd.elems, c)
			}
			d.depth--
		}
		if k == Attribute && !top {
			return d.one(false) // the element the attribute annotates
		}
	}
	nd.size = int64(d.pos - start)
	return nd, nil
}

// refFrames decodes all frames of b; err is nil, errRefIncomplete or errRefBad.
func refFrames(b []byte) ([]*refNode, error) {
	d := &refDec{b: b}
	var out []*refNode
	for d.pos < len(b) {
		nd, err := d.one(true)
		if err != nil {
			return out, err
		}
		out = append(out, nd)
	}
	return out, nil
}

// elemSum and frameSum are comparable descriptions of an Elem and a Frame.
type elemSum struct {
	kind          Kind
	kept          [MaxHeadBytes]byte
	nkept         int
	n             int64
	trunc, hasInt bool
	ival          int64
}

type frameSum struct {
	kind    Kind
	n, size int64
	headLen int
	head    [MaxHead]elemSum
}

func (f frameSum) String() string {
	s := fmt.Sprintf("%c N=%d size=%d", byte(f.kind), f.n, f.size)
	for _, e := range f.head[:f.headLen] {
		s += fmt.Sprintf(" [%c %q len=%d trunc=%v int=%v,%d]", byte(e.kind), e.kept[:e.nkept], e.n, e.trunc, e.hasInt, e.ival)
	}
	return s
}

func sumOf(f *Frame) frameSum {
	out := frameSum{kind: f.Kind, n: f.N, size: f.Size, headLen: f.HeadLen}
	for i := range f.HeadLen {
		e := &f.Head[i]
		es := &out.head[i]
		es.kind, es.n, es.trunc = e.Kind(), e.Len(), e.Truncated()
		es.nkept = copy(es.kept[:], e.Bytes())
		es.ival, es.hasInt = e.Int()
	}
	return out
}

// refSum describes nd as sumOf describes a Frame.
func refSum(nd *refNode) frameSum {
	out := frameSum{kind: nd.kind, n: nd.n, size: nd.size}
	head := nd.elems
	if !nd.kind.IsAggregate() {
		head = []*refNode{nd}
	}
	for i, e := range head[:min(len(head), MaxHead)] {
		es := &out.head[i]
		es.kind, es.n = e.kind, e.n
		if e.kind == Null {
			es.n = 0
		}
		es.nkept = copy(es.kept[:], e.text)
		es.trunc = !e.kind.IsAggregate() && len(e.text) > MaxHeadBytes
		switch {
		case e.kind == Integer:
			es.ival, es.hasInt = e.ival, true
		case (e.kind == BulkString || e.kind == SimpleString) && len(e.text) <= MaxHeadBytes:
			if v, err := strconv.ParseInt(string(e.text), 10, 64); err == nil {
				es.ival, es.hasInt = v, true
			}
		}
		out.headLen++
	}
	return out
}

// refValue converts nd to the Value that ReadValue should return.
func refValue(nd *refNode) *Value {
	v := &Value{Kind: nd.kind}
	switch {
	case nd.kind == Null || nd.n < 0 && (nd.kind == BulkString || nd.kind == Array):
		v.Null = true
	case nd.kind == Integer:
		v.Str, v.Int = string(nd.text), nd.ival
	case nd.kind.IsAggregate():
		v.Elems = make([]Value, len(nd.elems))
		for i, e := range nd.elems {
			v.Elems[i] = *refValue(e)
		}
	default:
		v.Str = string(nd.text)
	}
	return v
}

func valueString(v *Value) string {
	var b strings.Builder
	var walk func(*Value)
	walk = func(v *Value) {
		fmt.Fprintf(&b, "(%c", byte(v.Kind))
		switch {
		case v.Null:
			b.WriteString(" null")
		case v.Kind == Integer:
			fmt.Fprintf(&b, " %q %d", v.Str, v.Int)
		case v.Kind.IsAggregate():
			for i := range v.Elems {
				b.WriteByte(' ')
				walk(&v.Elems[i])
			}
		default:
			fmt.Fprintf(&b, " %q", v.Str)
		}
		b.WriteByte(')')
	}
	walk(v)
	return b.String()
}

// scanPieces scans data cut into pieces, returning the frames, the error
// and whether a frame was left unfinished.
func scanPieces(t *testing.T, data []byte, cuts []int) (frames []frameSum, err error, partial bool) {
	var s Scanner
	prev := 0
	cuts = append(cuts, len(data))
	for _, c := range cuts {
		p := data[prev:c]
		prev = c
		for len(p) > 0 {
			n, done, err := s.Scan(p)
			if err != nil {
				return frames, err, false
			}
			if done {
				frames = append(frames, sumOf(s.Frame()))
			} else if n != len(p) {
				t.Fatalf("Scan stopped at %d of %d bytes without a frame", n, len(p))
			}
			p = p[n:]
		}
	}
	return frames, nil, s.InFrame()
}

// chunkReader returns b in pieces of 1 to 8 bytes.
type chunkReader struct {
	b   []byte
	rng *rand.Rand
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 1+c.rng.IntN(8))], c.b)
	c.b = c.b[n:]
	return n, nil
}

func addSeeds(f *testing.F) {
	for _, c := range validFrames {
		f.Add([]byte(c.in), uint64(len(c.in)))
	}
	// The raw captures of real redis-server sessions (see capture_test.go),
	// cut to maxSeed bytes; TestDifferentialOnCaptures checks them whole.
	for _, b := range captures(f) {
		f.Add(b[:min(len(b), maxSeed)], uint64(len(b)))
		// The frame of the 1 MiB value, cut after its first bytes.
		if i := bytes.Index(b, []byte("$1048576\r\n")); i >= 0 {
			f.Add(b[i:min(len(b), i+maxSeed)], uint64(i))
		}
	}
}

// maxSeed is the longest capture prefix added to the fuzz seeds (the
// per-exchange files of testdata/fuzz hold the rest); see maxFuzzInput.
const maxSeed = 256

func captures(tb testing.TB) [][]byte {
	bins, _ := filepath.Glob(filepath.Join("testdata", "*.bin"))
	if len(bins) < 4 {
		tb.Fatalf("%d captures in testdata (re-create with: go test -tags respcapture -run TestCaptureCorpus ./internal/resp/)", len(bins))
	}
	var out [][]byte
	for _, p := range bins {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestDifferentialOnCaptures runs the fuzz test's checks on the whole
// captures, the 1 MiB bulk string included, at several random splits.
func TestDifferentialOnCaptures(t *testing.T) {
	for _, b := range captures(t) {
		for seed := range uint64(3) {
			differential(t, b, seed)
		}
	}
}

// FuzzScanner compares the Scanner with the reference decoder on arbitrary
// input: in one piece, split at random byte positions, and through the
// Reader's value trees (read in pieces of 1 to 8 bytes).
func FuzzScanner(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		differential(t, data[:min(len(data), maxFuzzInput)], seed)
	})
}

// maxFuzzInput bounds the input of one fuzz run: the fuzzer minimizes each
// new interesting input in time quadratic in its length, a minute at most,
// in which it tries nothing new; the bytes past this bound only make that
// longer. TestDifferentialOnCaptures runs the same checks on whole captures.
const maxFuzzInput = 512

// differential is the body of FuzzScanner.
func differential(t *testing.T, data []byte, seed uint64) {
	ref, refErr := refFrames(data)
	var want []frameSum
	for _, nd := range ref {
		want = append(want, refSum(nd))
	}

	whole, err, partial := scanPieces(t, data, nil)
	if !slices.Equal(whole, want) {
		t.Fatalf("frames differ from the reference decoder\nscanner:\n%v\nreference:\n%v", whole, want)
	}
	switch {
	case refErr == errRefBad && !errors.Is(err, ErrProtocol):
		t.Fatalf("the reference decoder refuses the input, the scanner: %v (partial %v)", err, partial)
	case refErr != errRefBad && err != nil:
		t.Fatalf("the scanner refuses input the reference decoder accepts: %v", err)
	case (refErr == errRefIncomplete) != partial:
		t.Fatalf("reference: %v, scanner partial frame: %v", refErr, partial)
	}

	rng := rand.New(rand.NewPCG(seed, seed>>7))
	var cuts []int
	for i := 0; i < len(data); i++ {
		if rng.IntN(4) == 0 {
			cuts = append(cuts, i)
		}
	}
	split, err2, partial2 := scanPieces(t, data, cuts)
	if !slices.Equal(split, whole) || partial2 != partial ||
		(err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
		t.Fatalf("split at %v: %v, %v, %v; in one piece: %v, %v, %v", cuts, split, err2, partial2, whole, err, partial)
	}

	r := NewReader(bufio.NewReaderSize(&chunkReader{b: data, rng: rng}, 16))
	for _, nd := range ref {
		if nd.kind == Attribute {
			continue // ReadValue drops top-level attributes
		}
		v, err := r.ReadValue()
		if err != nil {
			t.Fatalf("ReadValue: %v", err)
		}
		if want := refValue(nd); !reflect.DeepEqual(&v, want) {
			t.Fatalf("ReadValue = %s, reference %s", valueString(&v), valueString(want))
		}
	}
	_, err = r.ReadValue()
	switch refErr {
	case nil:
		if err != io.EOF {
			t.Fatalf("ReadValue at the end: %v", err)
		}
	case errRefIncomplete:
		if err != io.ErrUnexpectedEOF {
			t.Fatalf("ReadValue on a partial frame: %v", err)
		}
	case errRefBad:
		if !errors.Is(err, ErrProtocol) {
			t.Fatalf("ReadValue on bad input: %v", err)
		}
	}
}
