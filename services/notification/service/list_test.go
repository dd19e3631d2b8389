package service_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	eventsv1 "github.com/certflow/certflow/gen/go/certflow/events/v1"
	notificationv1 "github.com/certflow/certflow/gen/go/certflow/notification/v1"
	"github.com/certflow/certflow/pkg/auth"
	"github.com/certflow/certflow/pkg/events"
	"github.com/certflow/certflow/pkg/smtptest"
	"github.com/certflow/certflow/pkg/testenv"
	notification "github.com/certflow/certflow/services/notification/service"
)

func notificationPager(ctx context.Context, client notificationv1.NotificationServiceClient, filter string) testenv.Pager {
	return testenv.GRPCPager(func(size int32, token string) (*notificationv1.ListNotificationsResponse, error) {
		return client.ListNotifications(ctx, &notificationv1.ListNotificationsRequest{Filter: filter, PageSize: size, PageToken: token})
	}, func(r *notificationv1.ListNotificationsResponse) []string { return testenv.Names(r.Notifications) })
}

func webhookPager(ctx context.Context, client notificationv1.NotificationServiceClient) testenv.Pager {
	return testenv.GRPCPager(func(size int32, token string) (*notificationv1.ListWebhooksResponse, error) {
		return client.ListWebhooks(ctx, &notificationv1.ListWebhooksRequest{PageSize: size, PageToken: token})
	}, func(r *notificationv1.ListWebhooksResponse) []string { return testenv.Names(r.Webhooks) })
}

func deliveryPager(ctx context.Context, client notificationv1.NotificationServiceClient, parent string) testenv.Pager {
	return testenv.GRPCPager(func(size int32, token string) (*notificationv1.ListWebhookDeliveriesResponse, error) {
		return client.ListWebhookDeliveries(ctx, &notificationv1.ListWebhookDeliveriesRequest{Parent: parent, PageSize: size, PageToken: token})
	}, func(r *notificationv1.ListWebhookDeliveriesResponse) []string { return testenv.Names(r.Deliveries) })
}

// TestListsPageByKeyset: notifications (all, and of one application),
// webhooks and a webhook's deliveries page by keyset: every page size
// covers every item once, newest first, and a token is refused when
// tampered with, made up, or carried to another filter, another webhook,
// another account or another list.
func TestListsPageByKeyset(t *testing.T) {
	srv := smtptest.Start(t)
	client, conn := startWebhooks(t, notification.Config{SMTPAddr: srv.Addr(), WebhookAllowPrivate: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := testenv.As(ctx, "alice", auth.Customer)
	bob := testenv.As(ctx, "bob", auth.Customer)
	endpoint := newReceiver(t)

	var hooks []string // newest first
	for i := range 3 {
		hooks = append([]string{createWebhook(alice, t, client, endpoint.url, fmt.Sprint("hook-", i)).Name}, hooks...)
	}
	bobHook := createWebhook(bob, t, client, endpoint.url, "bob-hook").Name
	createWebhook(bob, t, client, endpoint.url, "bob-hook-2")
	issued := func(account, app string) {
		publish(ctx, t, conn, events.ApplicationIssued, app, &eventsv1.ApplicationIssued{
			Account: account, Application: app, Attempt: 1, Certificate: "certificates/" + strings.TrimPrefix(app, "applications/"),
			Domains: []string{"example.com"}, ApplicantEmail: account + "@example.com",
		})
	}
	issued("alice", "applications/a1")
	issued("bob", "applications/b1")
	issued("alice", "applications/a2")
	issued("alice", "applications/a1")
	issued("bob", "applications/b2")
	waitList(alice, t, client, allSent(3))
	waitList(bob, t, client, allSent(2))
	for _, h := range hooks {
		waitDeliveries(alice, t, client, h, 3, notificationv1.WebhookDelivery_DELIVERED)
	}
	waitDeliveries(bob, t, client, bobHook, 2, notificationv1.WebhookDelivery_DELIVERED)

	// The expected order is what one large page gives, checked newest
	// first by creation time.
	want := func(p testenv.Pager, times func(string) time.Time) []string {
		t.Helper()
		names, next, err := p(1000, "")
		if err != nil || next != "" {
			t.Fatalf("one page of 1000 = %v, %q, %v", names, next, err)
		}
		for i := 1; i < len(names); i++ {
			if times(names[i]).After(times(names[i-1])) {
				t.Fatalf("%s (%s) listed after %s (%s); want newest first", names[i], times(names[i]), names[i-1], times(names[i-1]))
			}
		}
		return names
	}
	created := map[string]time.Time{}
	for _, as := range []context.Context{alice, bob} {
		for _, n := range listAll(as, t, client, "") {
			created[n.Name] = n.CreateTime.AsTime()
		}
		resp, err := client.ListWebhooks(as, &notificationv1.ListWebhooksRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range resp.Webhooks {
			created[w.Name] = w.CreateTime.AsTime()
			for _, d := range deliveries(as, t, client, w.Name) {
				created[d.Name] = d.CreateTime.AsTime()
			}
		}
	}
	at := func(name string) time.Time { return created[name] }
	a1 := `application = "applications/a1"`

	for _, tt := range []struct {
		name string
		list testenv.KeysetList
	}{
		{"ListNotifications", testenv.KeysetList{
			List: notificationPager(alice, client, ""),
			Want: want(notificationPager(alice, client, ""), at),
			Elsewhere: map[string]testenv.Pager{
				"another filter":  notificationPager(alice, client, a1),
				"another account": notificationPager(bob, client, ""),
				"ListWebhooks":    webhookPager(alice, client),
			},
		}},
		{"ListNotifications of an application", testenv.KeysetList{
			List: notificationPager(alice, client, a1),
			Want: want(notificationPager(alice, client, a1), at),
			Elsewhere: map[string]testenv.Pager{
				"no filter":       notificationPager(alice, client, ""),
				"another app":     notificationPager(alice, client, `application = "applications/a2"`),
				"another account": notificationPager(bob, client, a1),
				"a webhook's log": deliveryPager(alice, client, hooks[0]),
			},
		}},
		{"ListWebhooks", testenv.KeysetList{
			List: webhookPager(alice, client),
			Want: hooks,
			Elsewhere: map[string]testenv.Pager{
				"another account":   webhookPager(bob, client),
				"ListNotifications": notificationPager(alice, client, ""),
			},
		}},
		{"ListWebhookDeliveries", testenv.KeysetList{
			List: deliveryPager(alice, client, hooks[1]),
			Want: want(deliveryPager(alice, client, hooks[1]), at),
			Elsewhere: map[string]testenv.Pager{
				"another webhook":   deliveryPager(alice, client, hooks[2]),
				"ListNotifications": notificationPager(alice, client, ""),
			},
		}},
		{"ListWebhookDeliveries of bob", testenv.KeysetList{
			List:      deliveryPager(bob, client, bobHook),
			Want:      want(deliveryPager(bob, client, bobHook), at),
			Elsewhere: map[string]testenv.Pager{"alice's webhook": deliveryPager(alice, client, hooks[0])},
		}},
	} {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) { testenv.CheckKeysetList(t, tt.list) })
	}
	if got := want(notificationPager(alice, client, a1), at); len(got) != 2 {
		t.Errorf("notifications of a1 = %v; want 2", got)
	}
}
