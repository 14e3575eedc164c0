package bench

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

var (
	rangeRE    = regexp.MustCompile(`^(\d+)(?:-(\d+)(?:([+*])(\d+))?)?(?:,|$)`)
	rangeNegRE = regexp.MustCompile(`^(-?\d+)(?:-(\d+)(?:([+*])(\d+))?)?(?:,|$)`)
	sizeRE     = regexp.MustCompile(`^(\d+)([kK]?)(?:-(\d+)([kK]?)(?:([+*])(\d+)([kK]?))?)?(?:,|$)`)
)

// maxRangeValues bounds the values one range may expand to, so that a typo
// such as 1-1000000000 fails instead of exhausting memory.
const maxRangeValues = 1 << 16

// ParseIntRange parses llama-bench's integer list syntax: comma-separated
// items, each a value or a range first-last, first-last+step or
// first-last*mult (both ends included, step +1 by default). A range that does
// not strictly increase, or any text left over, is an error. Only with
// allowNegative (-ngl) may the first value of an item be negative.
func ParseIntRange(s string, allowNegative bool) ([]int, error) {
	re := rangeRE
	if allowNegative {
		re = rangeNegRE
	}
	return parseRanges(s, re, false)
}

// ParseSizes parses the --prompt-sizes / --output-tokens syntax: the same
// lists and ranges as ParseIntRange where every number may carry a k or K
// suffix meaning ×1000 (decimal: 100k = 100000), e.g. "1k,10k,100k" or
// "1k-64k*2".
func ParseSizes(s string) ([]int, error) {
	return parseRanges(s, sizeRE, true)
}

func parseRanges(s string, re *regexp.Regexp, sizes bool) ([]int, error) {
	var out []int
	rest := s
	for rest != "" {
		m := re.FindStringSubmatch(rest)
		if m == nil {
			return nil, fmt.Errorf("invalid range format %q", s)
		}
		var first, last, step int
		var op string
		var err error
		if sizes {
			first, err = sizeNum(m[1], m[2])
			if err == nil {
				last = first
				if m[3] != "" {
					last, err = sizeNum(m[3], m[4])
				}
			}
			op, step = "+", 1
			if err == nil && m[5] != "" {
				op = m[5]
				step, err = sizeNum(m[6], m[7])
			}
		} else {
			first, err = strconv.Atoi(m[1])
			if err == nil {
				last = first
				if m[2] != "" {
					last, err = strconv.Atoi(m[2])
				}
			}
			op, step = "+", 1
			if err == nil && m[3] != "" {
				op = m[3]
				step, err = strconv.Atoi(m[4])
			}
		}
		if err != nil {
			return nil, fmt.Errorf("invalid number in %q: %v", s, err)
		}
		for i := first; i <= last; {
			out = append(out, i)
			if len(out) > maxRangeValues {
				return nil, fmt.Errorf("range %q expands to more than %d values", s, maxRangeValues)
			}
			prev := i
			if op == "*" {
				i *= step
			} else {
				i += step
			}
			if i <= prev {
				return nil, fmt.Errorf("invalid range %q: does not increase", s)
			}
		}
		rest = rest[len(m[0]):]
		if strings.HasSuffix(m[0], ",") && rest == "" {
			break // llama-bench accepts a trailing comma
		}
	}
	return out, nil
}

func sizeNum(digits, k string) (int, error) {
	n, err := strconv.Atoi(digits)
	if err != nil {
		return 0, err
	}
	if k != "" {
		if n > (1<<31-1)/1000 {
			return 0, fmt.Errorf("%s%s is too large", digits, k)
		}
		n *= 1000
	}
	return n, nil
}
