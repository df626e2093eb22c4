package inventory

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"

	"github.com/tienda/tienda/services/inventory/internal/store"
)

// catalogJSON is the catalog that a new shop starts with: a list of
// products, each with a USD price in cents and its initial stock.
//
//go:embed catalog.json
var catalogJSON []byte

type catalogEntry struct {
	SKU         string `json:"sku"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Category    string `json:"category"`
	Price       struct {
		CurrencyCode string `json:"currency_code"`
		Amount       int64  `json:"amount"`
	} `json:"price"`
	Stock int64 `json:"stock"`
}

// bundledCatalog decodes and checks the embedded catalog.
func bundledCatalog() ([]store.CatalogItem, error) {
	dec := json.NewDecoder(bytes.NewReader(catalogJSON))
	dec.DisallowUnknownFields()
	var entries []catalogEntry
	if err := dec.Decode(&entries); err != nil {
		return nil, fmt.Errorf("decode catalog: %w", err)
	}

	items := make([]store.CatalogItem, 0, len(entries))
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		p := store.Product{
			SKU:         e.SKU,
			Name:        e.Name,
			Description: e.Description,
			Category:    e.Category,
			Price:       store.Money{CurrencyCode: e.Price.CurrencyCode, Amount: e.Price.Amount},
		}
		if err := store.ValidateProduct(p); err != nil {
			return nil, fmt.Errorf("catalog: %w", err)
		}
		if seen[e.SKU] {
			return nil, fmt.Errorf("catalog: sku %s appears twice", e.SKU)
		}
		if e.Stock < 0 {
			return nil, fmt.Errorf("catalog: product %s has negative stock", e.SKU)
		}
		seen[e.SKU] = true
		items = append(items, store.CatalogItem{Product: p, InitialStock: e.Stock})
	}
	return items, nil
}
