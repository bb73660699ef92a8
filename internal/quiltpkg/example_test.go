package quiltpkg_test

import (
	"fmt"

	"benchling-webhook/internal/quiltpkg"
)

func ExampleCatalogLinks() {
	host, _ := quiltpkg.CheckCatalogHost("https://catalog.example.com/")
	l := quiltpkg.CatalogLinks(host, "quilt-benchling", quiltpkg.Name("benchling", "etr_123"))
	fmt.Println(l.Catalog)
	fmt.Println(l.Revise)
	fmt.Println(l.QuiltSync)
	// Output:
	// https://catalog.example.com/b/quilt-benchling/packages/benchling/etr_123
	// https://catalog.example.com/b/quilt-benchling/packages/benchling/etr_123?action=revisePackage
	// quilt+s3://quilt-benchling#package=benchling/etr_123&catalog=catalog.example.com
}
