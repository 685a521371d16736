// timeout: 90
//
// Delivery through amqp091-go (Debian's package, GOPATH mode): publisher
// confirms seen through NotifyPublish (every publish confirmed once, in
// order), manual acks under Qos (the prefetch window holds, ack multiple and
// nack with requeue), NotifyReturn for a mandatory publish (the return before
// its confirm), basic.get with message counts, and NotifyCancel when the
// queue goes away.  Expected values are RabbitMQ 3.10's.
//
// Deferred confirmations (PublishWithDeferredConfirm) are not checked: in
// amqp091-go 1.5.0 the publish is sent before its DeferredConfirmation is
// registered, so against a fast broker the ack can arrive first and Wait()
// never returns (rabbitmq/amqp091-go#182), whatever the broker does.
package main

import (
	"fmt"
	"os"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

var (
	passed, failed int
	prefix         = fmt.Sprintf("dg%d-", os.Getpid())
	created        []string
)

func check(name string, fn func() error) {
	if err := fn(); err != nil {
		failed++
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	passed++
	fmt.Printf("ok   %s\n", name)
}

func url() string {
	host := os.Getenv("WARREN_HOST")
	if host == "" {
		host = "127.0.0.1"
	}
	port := os.Getenv("WARREN_PORT")
	if port == "" {
		port = "5672"
	}
	return fmt.Sprintf("amqp://guest:guest@%s:%s/", host, port)
}

// withChannel runs fn on a fresh connection and channel, closed afterwards.
func withChannel(fn func(conn *amqp.Connection, ch *amqp.Channel) error) error {
	conn, err := amqp.Dial(url())
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("channel: %w", err)
	}
	return fn(conn, ch)
}

func declare(ch *amqp.Channel, name string) (string, error) {
	q := prefix + name
	if _, err := ch.QueueDeclare(q, false, false, false, false, nil); err != nil {
		return "", fmt.Errorf("declare %s: %w", q, err)
	}
	created = append(created, q)
	return q, nil
}

func depth(conn *amqp.Connection, q string) (int, error) {
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	info, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
	return info.Messages, err
}

func recv(dels <-chan amqp.Delivery, what string) (amqp.Delivery, error) {
	select {
	case d, ok := <-dels:
		if !ok {
			return d, fmt.Errorf("%s: delivery channel closed", what)
		}
		return d, nil
	case <-time.After(5 * time.Second):
		return amqp.Delivery{}, fmt.Errorf("%s: nothing delivered within 5 s", what)
	}
}

// quiet fails if anything is delivered within a short grace period.
func quiet(dels <-chan amqp.Delivery, what string) error {
	select {
	case d := <-dels:
		return fmt.Errorf("%s: unexpected delivery %q (tag %d)", what, d.Body, d.DeliveryTag)
	case <-time.After(300 * time.Millisecond):
		return nil
	}
}

func confirmsNotifyPublish() error {
	return withChannel(func(conn *amqp.Connection, ch *amqp.Channel) error {
		q, err := declare(ch, "confirm")
		if err != nil {
			return err
		}
		if err := ch.Confirm(false); err != nil {
			return fmt.Errorf("confirm.select: %w", err)
		}
		const n = 5000
		confirms := ch.NotifyPublish(make(chan amqp.Confirmation, n+1))
		for i := 0; i < n; i++ {
			err := ch.Publish("", q, false, false, amqp.Publishing{Body: []byte(fmt.Sprint(i))})
			if err != nil {
				return fmt.Errorf("publish %d: %w", i, err)
			}
		}
		for i := 1; i <= n; i++ {
			select {
			case c := <-confirms:
				if c.DeliveryTag != uint64(i) || !c.Ack {
					return fmt.Errorf("confirmation %d: tag %d ack %v", i, c.DeliveryTag, c.Ack)
				}
			case <-time.After(10 * time.Second):
				return fmt.Errorf("only %d of %d publishes confirmed", i-1, n)
			}
		}
		select {
		case c := <-confirms:
			return fmt.Errorf("extra confirmation for tag %d", c.DeliveryTag)
		case <-time.After(200 * time.Millisecond):
		}
		if got, err := depth(conn, q); err != nil || got != n {
			return fmt.Errorf("queue depth %d (%v), want %d", got, err, n)
		}
		return nil
	})
}

func manualAckWithQos() error {
	return withChannel(func(conn *amqp.Connection, ch *amqp.Channel) error {
		q, err := declare(ch, "qos")
		if err != nil {
			return err
		}
		for i := 0; i < 6; i++ {
			if err := ch.Publish("", q, false, false,
				amqp.Publishing{Body: []byte(fmt.Sprintf("w%d", i))}); err != nil {
				return err
			}
		}
		if err := ch.Qos(3, 0, false); err != nil {
			return fmt.Errorf("qos: %w", err)
		}
		dels, err := ch.Consume(q, "", false, false, false, false, nil)
		if err != nil {
			return fmt.Errorf("consume: %w", err)
		}
		var got []amqp.Delivery
		for i := 0; i < 3; i++ {
			d, err := recv(dels, "first window")
			if err != nil {
				return err
			}
			got = append(got, d)
		}
		if err := quiet(dels, "prefetch 3 with 3 unacked"); err != nil {
			return err
		}
		if got[0].ConsumerTag == "" {
			return fmt.Errorf("no consumer tag on deliveries")
		}
		// ack the first two at once: two more come
		if err := got[1].Ack(true); err != nil {
			return err
		}
		for i := 0; i < 2; i++ {
			d, err := recv(dels, "after ack multiple")
			if err != nil {
				return err
			}
			got = append(got, d)
		}
		if err := quiet(dels, "window full again"); err != nil {
			return err
		}
		// nack w2 with requeue: it comes back redelivered ahead of w5
		if err := got[2].Nack(false, true); err != nil {
			return err
		}
		d, err := recv(dels, "after nack")
		if err != nil {
			return err
		}
		if string(d.Body) != "w2" || !d.Redelivered {
			return fmt.Errorf("after nack: got %q redelivered=%v, want w2 redelivered", d.Body, d.Redelivered)
		}
		got = append(got, d)
		for _, d := range got[3:] {
			if err := d.Ack(false); err != nil {
				return err
			}
		}
		d, err = recv(dels, "last")
		if err != nil {
			return err
		}
		if string(d.Body) != "w5" || d.Redelivered {
			return fmt.Errorf("last: got %q redelivered=%v", d.Body, d.Redelivered)
		}
		if err := d.Ack(false); err != nil {
			return err
		}
		for i, d := range got {
			if want := fmt.Sprintf("w%d", i); i < 5 && string(d.Body) != want {
				return fmt.Errorf("delivery %d: %q, want %q", i, d.Body, want)
			}
		}
		time.Sleep(100 * time.Millisecond)
		if n, err := depth(conn, q); err != nil || n != 0 {
			return fmt.Errorf("depth %d (%v) after acking everything", n, err)
		}
		return nil
	})
}

func notifyReturn() error {
	return withChannel(func(conn *amqp.Connection, ch *amqp.Channel) error {
		returns := ch.NotifyReturn(make(chan amqp.Return, 4))
		if err := ch.Confirm(false); err != nil {
			return err
		}
		confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 4))
		err := ch.Publish("amq.direct", "no-such-binding", true, false, amqp.Publishing{
			ContentType: "text/plain", Headers: amqp.Table{"k": "v"}, Body: []byte("bounce"),
		})
		if err != nil {
			return err
		}
		select {
		case c := <-confirms:
			// the client reads frames in order, so a return sent before
			// the ack is already waiting in its buffered channel
			if !c.Ack || c.DeliveryTag != 1 {
				return fmt.Errorf("confirmation %+v", c)
			}
			if len(returns) != 1 {
				return fmt.Errorf("confirm arrived before the basic.return")
			}
		case <-time.After(5 * time.Second):
			return fmt.Errorf("no confirmation")
		}
		r := <-returns
		if r.ReplyCode != 312 || r.ReplyText != "NO_ROUTE" || r.Exchange != "amq.direct" ||
			r.RoutingKey != "no-such-binding" || string(r.Body) != "bounce" ||
			r.ContentType != "text/plain" || r.Headers["k"] != "v" {
			return fmt.Errorf("return %d %q %q %q %q %q %v", r.ReplyCode, r.ReplyText, r.Exchange,
				r.RoutingKey, r.Body, r.ContentType, r.Headers)
		}
		// a routable mandatory publish is not returned
		q, err := declare(ch, "ret")
		if err != nil {
			return err
		}
		if err := ch.Publish("", q, true, false, amqp.Publishing{Body: []byte("ok")}); err != nil {
			return err
		}
		select {
		case c := <-confirms:
			if !c.Ack || c.DeliveryTag != 2 {
				return fmt.Errorf("second confirmation %+v", c)
			}
		case <-time.After(5 * time.Second):
			return fmt.Errorf("no second confirmation")
		}
		if len(returns) != 0 {
			return fmt.Errorf("a routable message was returned")
		}
		return nil
	})
}

func getWithCounts() error {
	return withChannel(func(conn *amqp.Connection, ch *amqp.Channel) error {
		q, err := declare(ch, "get")
		if err != nil {
			return err
		}
		if _, ok, err := ch.Get(q, false); err != nil || ok {
			return fmt.Errorf("get on an empty queue: ok=%v err=%v", ok, err)
		}
		for _, b := range []string{"g0", "g1", "g2"} {
			if err := ch.Publish("", q, false, false, amqp.Publishing{Body: []byte(b)}); err != nil {
				return err
			}
		}
		for i := 0; i < 3; i++ {
			d, ok, err := ch.Get(q, false)
			if err != nil || !ok {
				return fmt.Errorf("get %d: ok=%v err=%v", i, ok, err)
			}
			if string(d.Body) != fmt.Sprintf("g%d", i) || d.MessageCount != uint32(2-i) {
				return fmt.Errorf("get %d: body %q message count %d", i, d.Body, d.MessageCount)
			}
			if err := d.Ack(false); err != nil {
				return err
			}
		}
		return nil
	})
}

func notifyCancel() error {
	return withChannel(func(conn *amqp.Connection, ch *amqp.Channel) error {
		q, err := declare(ch, "cancel")
		if err != nil {
			return err
		}
		cancels := ch.NotifyCancel(make(chan string, 1))
		dels, err := ch.Consume(q, "go-cancel-me", false, false, false, false, nil)
		if err != nil {
			return err
		}
		other, err := conn.Channel()
		if err != nil {
			return err
		}
		if _, err := other.QueueDelete(q, false, false, false); err != nil {
			return err
		}
		select {
		case tag := <-cancels:
			if tag != "go-cancel-me" {
				return fmt.Errorf("cancel for %q", tag)
			}
		case <-time.After(5 * time.Second):
			return fmt.Errorf("no basic.cancel after the queue was deleted")
		}
		select {
		case _, ok := <-dels:
			if ok {
				return fmt.Errorf("a delivery after cancel")
			}
		case <-time.After(5 * time.Second):
			return fmt.Errorf("delivery channel not closed after cancel")
		}
		return nil
	})
}

func cleanup() error {
	return withChannel(func(conn *amqp.Connection, ch *amqp.Channel) error {
		for _, q := range created {
			if _, err := ch.QueueDelete(q, false, false, false); err != nil {
				return err
			}
		}
		return nil
	})
}

func main() {
	check("confirms_notify_publish", confirmsNotifyPublish)
	check("manual_ack_with_qos", manualAckWithQos)
	check("notify_return_mandatory", notifyReturn)
	check("get_with_counts", getWithCounts)
	check("notify_cancel", notifyCancel)
	check("cleanup", cleanup)
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}
