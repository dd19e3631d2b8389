package service_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	orderv1 "github.com/certflow/certflow/gen/go/certflow/order/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/testenv"
	order "github.com/certflow/certflow/services/order/service"
)

// clock is a test clock that stays where it is set.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

func orderPager(ctx context.Context, client orderv1.OrderServiceClient) testenv.Pager {
	return testenv.GRPCPager(func(size int32, token string) (*orderv1.ListOrdersResponse, error) {
		return client.ListOrders(ctx, &orderv1.ListOrdersRequest{PageSize: size, PageToken: token})
	}, func(r *orderv1.ListOrdersResponse) []string { return testenv.Names(r.Orders) })
}

func instancePager(ctx context.Context, client orderv1.OrderServiceClient, filter string) testenv.Pager {
	return testenv.GRPCPager(func(size int32, token string) (*orderv1.ListInstancesResponse, error) {
		return client.ListInstances(ctx, &orderv1.ListInstancesRequest{Filter: filter, PageSize: size, PageToken: token})
	}, func(r *orderv1.ListInstancesResponse) []string { return testenv.Names(r.Instances) })
}

func productPager(ctx context.Context, client orderv1.OrderServiceClient, filter string) testenv.Pager {
	return testenv.GRPCPager(func(size int32, token string) (*orderv1.ListProductsResponse, error) {
		return client.ListProducts(ctx, &orderv1.ListProductsRequest{Filter: filter, PageSize: size, PageToken: token})
	}, func(r *orderv1.ListProductsResponse) []string { return testenv.Names(r.Products) })
}

// TestListsPageByKeyset: orders, instances (whole, and of one state) and
// products page by keyset: every page size covers every item once, newest
// first (orders made at the same instant by id, an order's instances in
// its sequence), and a token is refused when tampered with, made up, or
// carried to another filter, another account or another list.
func TestListsPageByKeyset(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	client, _ := startWith(t, order.Config{Now: clk.now})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := testenv.As(ctx, "alice", auth.Customer)
	bob := testenv.As(ctx, "bob", auth.Customer)

	buy := func(as context.Context, qty int32, at time.Time) *orderv1.Order {
		t.Helper()
		clk.set(at)
		o, err := client.CreateOrder(as, &orderv1.CreateOrderRequest{Order: &orderv1.Order{Product: "products/dv-single-1y", Quantity: qty}})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	t0 := clk.now()
	// Two orders at the same instant: the listing breaks the tie by id.
	big, small := buy(alice, 3, t0), buy(alice, 1, t0)
	o1, o2 := big, small
	if o1.Name < o2.Name {
		o1, o2 = o2, o1
	}
	o3 := buy(alice, 2, t0.Add(time.Minute))
	b1 := buy(bob, 2, t0.Add(time.Minute))
	o4 := buy(alice, 1, t0.Add(2*time.Minute))
	for _, in := range []string{big.Instances[1], o3.Instances[0]} {
		if _, err := client.BindInstance(alice, &orderv1.BindInstanceRequest{Name: in, Application: "applications/x"}); err != nil {
			t.Fatal(err)
		}
	}
	var all []string
	for _, o := range []*orderv1.Order{o4, o3, o1, o2} {
		all = append(all, o.Instances...)
	}
	applying := []string{o3.Instances[0], big.Instances[1]}
	var pending []string
	for _, in := range all {
		if !slices.Contains(applying, in) {
			pending = append(pending, in)
		}
	}
	var products []string
	resp, err := client.ListProducts(ctx, &orderv1.ListProductsRequest{Filter: "validation_level = DV"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.Products {
		products = append(products, p.Name)
	}

	for _, tt := range []struct {
		name string
		list testenv.KeysetList
	}{
		{"ListOrders", testenv.KeysetList{
			List: orderPager(alice, client),
			Want: []string{o4.Name, o3.Name, o1.Name, o2.Name},
			Elsewhere: map[string]testenv.Pager{
				"another account": orderPager(bob, client),
				"ListInstances":   instancePager(alice, client, ""),
			},
		}},
		{"ListInstances", testenv.KeysetList{
			List: instancePager(alice, client, ""),
			Want: all,
			Elsewhere: map[string]testenv.Pager{
				"another filter":  instancePager(alice, client, "state = PENDING_APPLICATION"),
				"another account": instancePager(bob, client, ""),
				"ListOrders":      orderPager(alice, client),
			},
		}},
		{"ListInstances PENDING_APPLICATION", testenv.KeysetList{
			List: instancePager(alice, client, "state = PENDING_APPLICATION"),
			Want: pending,
			Elsewhere: map[string]testenv.Pager{
				"no filter":               instancePager(alice, client, ""),
				"the filter spelt anew":   instancePager(alice, client, "state=PENDING_APPLICATION"),
				"another account":         instancePager(bob, client, "state = PENDING_APPLICATION"),
				"another state's filter":  instancePager(alice, client, "state = APPLYING"),
				"ListProducts, no filter": productPager(alice, client, ""),
			},
		}},
		{"ListInstances APPLYING", testenv.KeysetList{
			List:      instancePager(alice, client, "state = APPLYING"),
			Want:      applying,
			Elsewhere: map[string]testenv.Pager{"another account": instancePager(bob, client, "state = APPLYING")},
		}},
		{"ListInstances of bob", testenv.KeysetList{
			List:      instancePager(bob, client, ""),
			Want:      b1.Instances,
			Elsewhere: map[string]testenv.Pager{"alice": instancePager(alice, client, "")},
		}},
		{"ListProducts DV", testenv.KeysetList{
			List:      productPager(alice, client, "validation_level = DV"),
			Want:      products,
			Elsewhere: map[string]testenv.Pager{"another filter": productPager(alice, client, "validation_level = OV")},
		}},
	} {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) { testenv.CheckKeysetList(t, tt.list) })
	}
	if len(products) < 2 {
		t.Fatalf("DV products = %v; want several", products)
	}

	// An instance bound while a client pages (it leaves the PENDING
	// filter) neither repeats nor shifts the later pages.
	p := instancePager(alice, client, "state = PENDING_APPLICATION")
	first, next, err := p(2, "")
	if err != nil || !slices.Equal(first, pending[:2]) {
		t.Fatalf("first page = %v, %v; want %v", first, err, pending[:2])
	}
	if _, err := client.BindInstance(alice, &orderv1.BindInstanceRequest{Name: pending[2], Application: "applications/y"}); err != nil {
		t.Fatal(err)
	}
	rest, _, err := p(100, next)
	if want := pending[3:]; err != nil || !slices.Equal(rest, want) {
		t.Fatalf("page after a bind = %v, %v; want %v", rest, err, want)
	}
}
