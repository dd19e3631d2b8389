package service_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	orderv1 "github.com/certflow/certflow/gen/go/certflow/order/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/service"
	"github.com/certflow/certflow/pkg/testenv"
	order "github.com/certflow/certflow/services/order/service"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func start(t *testing.T) (orderv1.OrderServiceClient, *events.Conn) {
	t.Helper()
	return startWith(t, order.Config{})
}

func startWith(t *testing.T, cfg order.Config) (orderv1.OrderServiceClient, *events.Conn) {
	t.Helper()
	natsURL := testenv.NATS(t)
	_, db := testenv.Database(t)
	cfg.Config = service.Config{
		GRPCAddr: "127.0.0.1:0", MongoURI: testenv.MongoURI(t), Database: db, NATSURL: natsURL, NATSSeedFile: testenv.NATSSeed(t, natsURL, "order"), PKI: testenv.PKI(t), Log: testenv.Logger(t),
	}
	svc, err := order.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, svc.Run)
	return orderv1.NewOrderServiceClient(testenv.Dial(t, svc.GRPC.Addr())), testenv.Conn(t, natsURL)
}

func TestOrderLifecycle(t *testing.T) {
	client, conn := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice := testenv.As(ctx, "alice", auth.Customer)
	bob := testenv.As(ctx, "bob", auth.Customer)

	req := &orderv1.CreateOrderRequest{Order: &orderv1.Order{Product: "products/dv-single-1y", Quantity: 2}, RequestId: "r-1"}
	o, err := client.CreateOrder(alice, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Instances) != 2 {
		t.Fatalf("CreateOrder made %d instances; want 2", len(o.Instances))
	}
	again, err := client.CreateOrder(alice, req)
	if err != nil || again.Name != o.Name {
		t.Fatalf("CreateOrder retry = %v, %v; want the same order %s", again.GetName(), err, o.Name)
	}
	list, err := client.ListOrders(alice, &orderv1.ListOrdersRequest{})
	if err != nil || len(list.Orders) != 1 {
		t.Fatalf("ListOrders after retried create = %d orders, %v; want 1", len(list.GetOrders()), err)
	}

	if _, err := client.GetInstance(bob, &orderv1.GetInstanceRequest{Name: o.Instances[0]}); testenv.Code(err) != codes.NotFound {
		t.Fatalf("GetInstance by another account = %v; want NotFound", err)
	}
	if _, err := client.CreateOrder(ctx, req); testenv.Code(err) != codes.Unauthenticated {
		t.Fatalf("CreateOrder without account = %v; want Unauthenticated", err)
	}

	in, err := client.BindInstance(alice, &orderv1.BindInstanceRequest{Name: o.Instances[0], Application: "applications/a1"})
	if err != nil || in.State != orderv1.Instance_APPLYING {
		t.Fatalf("BindInstance = %v, %v; want APPLYING", in.GetState(), err)
	}
	if _, err := client.BindInstance(alice, &orderv1.BindInstanceRequest{Name: o.Instances[0], Application: "applications/a2"}); testenv.Code(err) != codes.FailedPrecondition {
		t.Fatalf("BindInstance of a used instance = %v; want FailedPrecondition", err)
	}
	pending, err := client.ListInstances(alice, &orderv1.ListInstancesRequest{Filter: "state = PENDING_APPLICATION"})
	if err != nil || len(pending.Instances) != 1 || pending.Instances[0].Name != o.Instances[1] {
		t.Fatalf("ListInstances(PENDING_APPLICATION) = %v, %v; want only %s", pending, err, o.Instances[1])
	}
	if _, err := client.ListInstances(alice, &orderv1.ListInstancesRequest{Filter: "state = BOGUS"}); testenv.Code(err) != codes.InvalidArgument {
		t.Fatalf("ListInstances with bad state = %v; want InvalidArgument", err)
	}
	if _, err := client.ReleaseInstance(alice, &orderv1.ReleaseInstanceRequest{Name: o.Instances[0], Application: "applications/a1"}); err != nil {
		t.Fatal(err)
	}
	got, _ := client.GetInstance(alice, &orderv1.GetInstanceRequest{Name: o.Instances[0]})
	if got.State != orderv1.Instance_PENDING_APPLICATION {
		t.Fatalf("state after release = %v; want PENDING_APPLICATION", got.State)
	}

	// order.created, instance.bound and instance.released reach JetStream.
	stream, _ := conn.JS.Stream(ctx, events.Stream)
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, _ := stream.Info(ctx)
		if info.State.Msgs == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream holds %d events; want 3", info.State.Msgs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, want := range []string{events.OrderCreated, events.InstanceBound, events.InstanceReleased} {
		m, err := stream.GetMsg(ctx, uint64(i+1))
		if err != nil || m.Subject != want {
			t.Errorf("event %d = %v, %v; want %s", i+1, m.Subject, err, want)
		}
	}
}

func TestCreateOrderRejectsBadInput(t *testing.T) {
	client, _ := start(t)
	ctx := testenv.As(context.Background(), "alice", auth.Customer)
	tests := []struct {
		order *orderv1.Order
		want  codes.Code
	}{
		{&orderv1.Order{Product: "products/nope", Quantity: 1}, codes.InvalidArgument},
		{&orderv1.Order{Product: "dv-single-1y", Quantity: 1}, codes.InvalidArgument},
		{&orderv1.Order{Product: "products/dv-single-1y", Quantity: 0}, codes.InvalidArgument},
		{&orderv1.Order{Product: "products/dv-multi-1y", Quantity: 1, DomainCount: 1}, codes.InvalidArgument},
		{nil, codes.InvalidArgument},
	}
	for _, tt := range tests {
		if _, err := client.CreateOrder(ctx, &orderv1.CreateOrderRequest{Order: tt.order}); testenv.Code(err) != tt.want {
			t.Errorf("CreateOrder(%v) = %v; want %v", tt.order, err, tt.want)
		}
	}
	list, _ := client.ListOrders(ctx, &orderv1.ListOrdersRequest{})
	if len(list.GetOrders()) != 0 {
		t.Errorf("refused creates stored %d orders; want 0", len(list.Orders))
	}
}
