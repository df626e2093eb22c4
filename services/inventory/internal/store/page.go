package store

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strings"
)

// Page sizes of ListProducts.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// ListOptions selects a page of products.
type ListOptions struct {
	// Query holds words that every product must contain in its SKU, name,
	// description or category, case-insensitively; empty matches all.
	Query string
	// Category, when not empty, keeps only products of exactly that
	// category.
	Category string
	// PageSize is how many products to return at most: zero or less means
	// DefaultPageSize, and more than MaxPageSize means MaxPageSize.
	PageSize int
	// PageToken is the NextPageToken of the previous page, or empty.
	PageToken string
}

// Page is one page of products.
type Page struct {
	Products []Product
	// NextPageToken is empty on the last page.
	NextPageToken string
}

// ListQuery is a validated [ListOptions], ready for a store to run: products
// with SKU greater than After, of Category if set, whose search text (see
// [SearchText]) contains every one of Words, in SKU order, at most Limit+1 of
// them so that [ListQuery.Page] can tell whether another page follows.
type ListQuery struct {
	Words    []string
	Category string
	After    string
	Limit    int

	filter uint64
}

// pageCursor is what an opaque page token encodes. Filter is a hash of the
// filters the token was issued for, so that a token cannot be replayed with
// other filters and silently skip products.
type pageCursor struct {
	Version int    `json:"v"`
	After   string `json:"a"`
	Filter  uint64 `json:"f"`
}

const pageCursorVersion = 1

// PrepareList validates opts and decodes its page token. A bad token gives
// an error matching ErrInvalidPageToken.
func PrepareList(opts ListOptions) (ListQuery, error) {
	q := ListQuery{
		Words:    strings.Fields(strings.ToLower(opts.Query)),
		Category: opts.Category,
		Limit:    opts.PageSize,
	}
	if q.Limit <= 0 {
		q.Limit = DefaultPageSize
	}
	q.Limit = min(q.Limit, MaxPageSize)
	q.filter = filterHash(q.Words, q.Category)
	if opts.PageToken == "" {
		return q, nil
	}

	raw, err := base64.RawURLEncoding.DecodeString(opts.PageToken)
	if err != nil {
		return ListQuery{}, fmt.Errorf("%w: not base64", ErrInvalidPageToken)
	}
	var c pageCursor
	err = json.Unmarshal(raw, &c)
	if err != nil || c.Version != pageCursorVersion || c.After == "" {
		return ListQuery{}, fmt.Errorf("%w: malformed", ErrInvalidPageToken)
	}
	if c.Filter != q.filter {
		return ListQuery{}, fmt.Errorf("%w: it was issued for other filters", ErrInvalidPageToken)
	}
	q.After = c.After
	return q, nil
}

// Page turns the up to Limit+1 products a store found for q into a page,
// with a token for the next page if there are more.
func (q ListQuery) Page(products []Product) Page {
	if len(products) <= q.Limit {
		return Page{Products: products}
	}
	products = products[:q.Limit]
	c := pageCursor{
		Version: pageCursorVersion,
		After:   products[len(products)-1].SKU,
		Filter:  q.filter,
	}
	raw, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("encode page cursor: %v", err)) // cannot happen with these field types
	}
	return Page{Products: products, NextPageToken: base64.RawURLEncoding.EncodeToString(raw)}
}

func filterHash(words []string, category string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(strings.Join(words, " ")))
	h.Write([]byte{0})
	h.Write([]byte(category))
	return h.Sum64()
}
