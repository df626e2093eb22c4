package store

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Limits of the domain, matching the public API.
const (
	MaxSKULen           = 64
	MaxReservationIDLen = 128
)

var (
	skuPattern      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
)

// ValidateProduct checks the catalog fields of p. Its errors match
// ErrInvalidArgument.
func ValidateProduct(p Product) error {
	switch {
	case len(p.SKU) > MaxSKULen || !skuPattern.MatchString(p.SKU):
		return fmt.Errorf("%w: sku %q must be 1 to %d letters, digits, '.', '_' or '-'",
			ErrInvalidArgument, p.SKU, MaxSKULen)
	case strings.TrimSpace(p.Name) == "":
		return fmt.Errorf("%w: product %s has no name", ErrInvalidArgument, p.SKU)
	case strings.TrimSpace(p.Category) == "":
		return fmt.Errorf("%w: product %s has no category", ErrInvalidArgument, p.SKU)
	case !utf8.ValidString(p.Name + p.Description + p.Category):
		return fmt.Errorf("%w: product %s has text that is not UTF-8", ErrInvalidArgument, p.SKU)
	case !currencyPattern.MatchString(p.Price.CurrencyCode):
		return fmt.Errorf("%w: product %s has currency %q, want an ISO 4217 code",
			ErrInvalidArgument, p.SKU, p.Price.CurrencyCode)
	case p.Price.Amount < 0:
		return fmt.Errorf("%w: product %s has a negative price", ErrInvalidArgument, p.SKU)
	}
	return nil
}

// ValidateReservationID checks a client-chosen reservation id. Its errors
// match ErrInvalidArgument.
func ValidateReservationID(id string) error {
	if id == "" || len(id) > MaxReservationIDLen {
		return fmt.Errorf("%w: reservation id must be 1 to %d bytes",
			ErrInvalidArgument, MaxReservationIDLen)
	}
	return nil
}

// NormalizeLines checks the lines of a reservation and returns a copy sorted
// by SKU, the order in which stores lock products so that concurrent
// reservations cannot deadlock. It refuses no lines, a quantity below one
// and a SKU that appears twice, with errors matching ErrInvalidArgument.
func NormalizeLines(lines []Line) ([]Line, error) {
	if len(lines) == 0 {
		return nil, fmt.Errorf("%w: a reservation needs at least one line", ErrInvalidArgument)
	}
	sorted := slices.Clone(lines)
	slices.SortFunc(sorted, func(a, b Line) int { return cmp.Compare(a.SKU, b.SKU) })
	for i, l := range sorted {
		if l.SKU == "" {
			return nil, fmt.Errorf("%w: a line has no sku", ErrInvalidArgument)
		}
		if l.Quantity <= 0 {
			return nil, fmt.Errorf("%w: line %s has quantity %d, want at least 1",
				ErrInvalidArgument, l.SKU, l.Quantity)
		}
		if i > 0 && sorted[i-1].SKU == l.SKU {
			return nil, fmt.Errorf("%w: sku %s appears in more than one line",
				ErrInvalidArgument, l.SKU)
		}
	}
	return sorted, nil
}

// SameLines reports whether two normalized line lists hold the same
// quantities of the same SKUs.
func SameLines(a, b []Line) bool {
	return slices.Equal(a, b)
}

// UniqueSKUs returns skus without duplicates, keeping the first occurrence.
func UniqueSKUs(skus []string) []string {
	seen := make(map[string]bool, len(skus))
	out := make([]string, 0, len(skus))
	for _, s := range skus {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// SearchText returns the text that list queries match words against: the
// SKU, name, description and category, lowercased and separated by
// newlines, so that no query word can span two fields. Stores keep it in a
// column next to the product.
func SearchText(p Product) string {
	return strings.ToLower(strings.Join(
		[]string{p.SKU, p.Name, p.Description, p.Category}, "\n"))
}
