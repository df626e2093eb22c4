package store

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// StoredTime returns t as the stores keep it: in UTC, truncated to the
// microsecond, the precision of PostgreSQL's timestamps.
func StoredTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// CheckAdd checks that a line holding inCart units of sku may take quantity
// more, given the caller's maxQuantity (0 for none). It returns the line's
// new quantity, or a [*QuantityLimitError] or [*ArgumentError].
func CheckAdd(sku string, inCart, quantity, maxQuantity int64) (int64, error) {
	if quantity <= 0 {
		return 0, invalidf("quantity %d is not positive", quantity)
	}
	if maxQuantity < 0 {
		return 0, invalidf("max quantity %d is negative", maxQuantity)
	}
	limit := int64(MaxLineQuantity)
	if maxQuantity > 0 {
		limit = min(limit, maxQuantity)
	}
	// Compare without adding first: inCart+quantity cannot overflow while
	// quantity is at most the limit.
	if quantity > limit || inCart > limit-quantity {
		return 0, &QuantityLimitError{
			SKU:       sku,
			InCart:    inCart,
			Requested: saturatingAdd(inCart, quantity),
			Limit:     limit,
		}
	}
	return inCart + quantity, nil
}

// CheckNewLine checks that a cart holding lines lines may take one more.
func CheckNewLine(lines int) error {
	if lines >= MaxLines {
		return fmt.Errorf("cart holds %d products: %w", lines, ErrTooManyLines)
	}
	return nil
}

// saturatingAdd returns a+b for non-negative a and b, or math.MaxInt64 if the
// sum does not fit.
func saturatingAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// CheckUpdate checks that a line holding inCart units of sku may be set to
// quantity units.
func CheckUpdate(sku string, inCart, quantity int64) error {
	if quantity < 0 {
		return invalidf("quantity %d is negative", quantity)
	}
	if quantity > MaxLineQuantity {
		return &QuantityLimitError{
			SKU:       sku,
			InCart:    inCart,
			Requested: quantity,
			Limit:     MaxLineQuantity,
		}
	}
	return nil
}

// PriceLines checks the lines of a new order and returns a copy of them with
// their line totals set, and the order's total. Every line must name a
// distinct SKU, hold 1 to [MaxLineQuantity] units and be priced in the same
// currency, with a unit price that is not negative; the totals must fit in
// an int64. Any other lines fail with an [*ArgumentError].
func PriceLines(lines []OrderLine) ([]OrderLine, Money, error) {
	if len(lines) == 0 {
		return nil, Money{}, invalidf("an order needs at least one line")
	}
	currency := lines[0].UnitPrice.Currency
	if currency == "" {
		return nil, Money{}, invalidf("line 1 has no currency")
	}

	priced := make([]OrderLine, len(lines))
	seen := make(map[string]bool, len(lines))
	total := Money{Currency: currency}
	for i, l := range lines {
		switch {
		case l.SKU == "":
			return nil, Money{}, invalidf("line %d has no sku", i+1)
		case seen[l.SKU]:
			return nil, Money{}, invalidf("sku %q appears in more than one line", l.SKU)
		case l.Quantity <= 0 || l.Quantity > MaxLineQuantity:
			return nil, Money{}, invalidf("sku %q: quantity %d is not between 1 and %d",
				l.SKU, l.Quantity, MaxLineQuantity)
		case l.UnitPrice.Currency != currency:
			return nil, Money{}, invalidf("sku %q is priced in %q, not %q like line 1",
				l.SKU, l.UnitPrice.Currency, currency)
		case l.UnitPrice.Amount < 0:
			return nil, Money{}, invalidf("sku %q has a negative unit price", l.SKU)
		case l.UnitPrice.Amount > math.MaxInt64/l.Quantity:
			return nil, Money{}, invalidf("sku %q: line total is too large", l.SKU)
		}
		seen[l.SKU] = true

		l.LineTotal = Money{Currency: currency, Amount: l.UnitPrice.Amount * l.Quantity}
		if total.Amount > math.MaxInt64-l.LineTotal.Amount {
			return nil, Money{}, invalidf("order total is too large")
		}
		total.Amount += l.LineTotal.Amount
		priced[i] = l
	}
	return priced, total, nil
}

// MatchesCart reports whether lines hold exactly the SKUs and quantities of
// the cart's lines, in any order.
func MatchesCart(cart []Line, lines []OrderLine) bool {
	if len(cart) != len(lines) {
		return false
	}
	want := make(map[string]int64, len(cart))
	for _, l := range cart {
		want[l.SKU] = l.Quantity
	}
	for _, l := range lines {
		q, ok := want[l.SKU]
		if !ok || q != l.Quantity {
			return false
		}
		delete(want, l.SKU) // a repeated SKU must not match twice
	}
	return true
}

// SameOrder reports whether an existing order is what placing lines for
// shopperID would create: the same shopper, SKUs and quantities. Prices and
// names may differ, since a retry may have priced the cart again.
func SameOrder(o Order, shopperID string, lines []OrderLine) bool {
	if o.ShopperID != shopperID {
		return false
	}
	cart := make([]Line, len(o.Lines))
	for i, l := range o.Lines {
		cart[i] = Line{SKU: l.SKU, Quantity: l.Quantity}
	}
	return MatchesCart(cart, lines)
}

// PageSize returns the number of orders to return for a requested page size.
func PageSize(n int) (int, error) {
	switch {
	case n < 0:
		return 0, invalidf("page size %d is negative", n)
	case n == 0:
		return DefaultPageSize, nil
	default:
		return min(n, MaxPageSize), nil
	}
}

// Cursor is the position of an order in a shopper's list of orders, which is
// sorted by CreateTime and then OrderID, both descending. A page starts
// right after its cursor.
type Cursor struct {
	CreateTime time.Time
	OrderID    string
}

// pageTokenVersion starts every page token, so that the format can change
// without old tokens being misread.
const pageTokenVersion = 1

// EncodePageToken returns the opaque page token for c: URL-safe base64 of a
// version byte, the time in Unix microseconds and the order id.
func EncodePageToken(c Cursor) string {
	b := make([]byte, 9, 9+len(c.OrderID))
	b[0] = pageTokenVersion
	binary.BigEndian.PutUint64(b[1:], uint64(c.CreateTime.UnixMicro()))
	b = append(b, c.OrderID...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodePageToken returns the cursor in a token made by [EncodePageToken],
// or [ErrInvalidPageToken].
func DecodePageToken(token string) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < 10 || b[0] != pageTokenVersion || !utf8.Valid(b[9:]) {
		return Cursor{}, ErrInvalidPageToken
	}
	micros := int64(binary.BigEndian.Uint64(b[1:9]))
	return Cursor{
		CreateTime: time.UnixMicro(micros).UTC(),
		OrderID:    string(b[9:]),
	}, nil
}
