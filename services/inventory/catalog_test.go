package inventory

import (
	"testing"
)

func TestBundledCatalog(t *testing.T) {
	t.Parallel()
	items, err := bundledCatalog()
	if err != nil {
		t.Fatalf("bundledCatalog() = %v", err)
	}
	if len(items) < 50 {
		t.Errorf("bundledCatalog() has %d products, want at least 50", len(items))
	}

	categories := make(map[string]int)
	scarce := 0
	for _, it := range items {
		p := it.Product
		categories[p.Category]++
		if p.Description == "" {
			t.Errorf("product %s has no description", p.SKU)
		}
		if p.Price.CurrencyCode != "USD" || p.Price.Amount <= 0 {
			t.Errorf("product %s costs %+v, want a positive USD price", p.SKU, p.Price)
		}
		if it.InitialStock < 1 || it.InitialStock > 200 {
			t.Errorf("product %s starts with %d units, want 1 to 200", p.SKU, it.InitialStock)
		}
		if it.InitialStock <= 5 {
			scarce++
		}
	}
	if len(categories) < 6 {
		t.Errorf("bundledCatalog() has categories %v, want at least 6", categories)
	}
	if scarce == 0 {
		t.Error("bundledCatalog() has no scarce product, want a few with 1 to 5 units")
	}
}
