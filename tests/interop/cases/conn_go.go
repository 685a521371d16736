// timeout: 60
//
// Connections and channels through amqp091-go (Debian's package, GOPATH
// mode): dial with a heartbeat and client properties, the negotiated tuning
// and server properties, NotifyClose on connection and channel, declare /
// publish / consume with properties and headers intact, publisher confirms,
// several channels at once, an idle connection kept up by heartbeats, a soft
// error that closes only its channel, a hard error that closes the
// connection, and a clean close that reports no error.
package main

import (
	"bytes"
	"fmt"
	"os"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

var passed, failed int

func check(name string, fn func() error) {
	err := fn()
	if err != nil {
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

func dial(heartbeat time.Duration, name string) (*amqp.Connection, error) {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(name)
	return amqp.DialConfig(url(), amqp.Config{Heartbeat: heartbeat, Properties: props})
}

// expectNoClose fails if a close notification is already waiting.
func expectNoClose(ch chan *amqp.Error, what string) error {
	select {
	case e := <-ch:
		return fmt.Errorf("%s closed unexpectedly: %v", what, e)
	default:
		return nil
	}
}

func waitClose(ch chan *amqp.Error, what string) (*amqp.Error, error) {
	select {
	case e, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%s close channel closed without an error", what)
		}
		return e, nil
	case <-time.After(5 * time.Second):
		return nil, fmt.Errorf("no close notification for %s within 5 s", what)
	}
}

func roundTrip(ch *amqp.Channel, body string) error {
	q, err := ch.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		return fmt.Errorf("declare: %w", err)
	}
	if err := ch.Publish("", q.Name, false, false, amqp.Publishing{Body: []byte(body)}); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		d, ok, err := ch.Get(q.Name, true)
		if err != nil {
			return fmt.Errorf("get: %w", err)
		}
		if ok {
			if string(d.Body) != body {
				return fmt.Errorf("got %q back, sent %q", d.Body, body)
			}
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("message not back within 5 s")
}

func main() {
	conn, err := dial(2*time.Second, "h7-go")
	if err != nil {
		fmt.Printf("FAIL dial: %v\n0 passed, 1 failed\n", err)
		os.Exit(1)
	}
	connClosed := conn.NotifyClose(make(chan *amqp.Error, 1))

	check("negotiated tuning", func() error {
		if conn.Config.Heartbeat != 2*time.Second {
			return fmt.Errorf("heartbeat %v, asked 2s", conn.Config.Heartbeat)
		}
		if conn.Config.ChannelMax != 2047 {
			return fmt.Errorf("channel_max %d", conn.Config.ChannelMax)
		}
		if conn.Config.FrameSize != 131072 {
			return fmt.Errorf("frame_max %d", conn.Config.FrameSize)
		}
		if conn.Major != 0 || conn.Minor != 9 {
			return fmt.Errorf("protocol %d-%d", conn.Major, conn.Minor)
		}
		return nil
	})

	check("server properties", func() error {
		if p, _ := conn.Properties["product"].(string); p != "Warren" {
			return fmt.Errorf("product %q", conn.Properties["product"])
		}
		caps, ok := conn.Properties["capabilities"].(amqp.Table)
		if !ok {
			return fmt.Errorf("capabilities is %T", conn.Properties["capabilities"])
		}
		for _, k := range []string{"publisher_confirms", "basic.nack", "consumer_cancel_notify",
			"exchange_exchange_bindings", "connection.blocked", "authentication_failure_close",
			"per_consumer_qos", "direct_reply_to", "consumer_priorities"} {
			if v, _ := caps[k].(bool); !v {
				return fmt.Errorf("capability %s = %v", k, caps[k])
			}
		}
		return nil
	})

	ch, err := conn.Channel()
	if err != nil {
		fmt.Printf("FAIL channel: %v\n%d passed, %d failed\n", err, passed, failed+1)
		os.Exit(1)
	}
	chClosed := ch.NotifyClose(make(chan *amqp.Error, 1))

	check("publish and consume with properties", func() error {
		q, err := ch.QueueDeclare("h7-go-q", false, false, false, false, nil)
		if err != nil {
			return err
		}
		if q.Messages != 0 || q.Consumers != 0 {
			return fmt.Errorf("fresh queue reports %d messages, %d consumers", q.Messages, q.Consumers)
		}
		ts := time.Unix(1700000000, 0)
		const n = 50
		for i := 0; i < n; i++ {
			err := ch.Publish("", q.Name, false, false, amqp.Publishing{
				Headers:       amqp.Table{"i": int32(i), "s": "x", "nested": amqp.Table{"b": true}},
				ContentType:   "text/plain",
				DeliveryMode:  amqp.Persistent,
				Priority:      3,
				CorrelationId: fmt.Sprintf("c%d", i),
				ReplyTo:       "rq",
				MessageId:     fmt.Sprintf("m%d", i),
				Timestamp:     ts,
				Type:          "t",
				AppId:         "h7",
				Body:          []byte(fmt.Sprintf("msg %d", i)),
			})
			if err != nil {
				return err
			}
		}
		if err := ch.Qos(10, 0, false); err != nil {
			return err
		}
		dels, err := ch.Consume(q.Name, "h7-ctag", false, false, false, false, nil)
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			select {
			case d := <-dels:
				want := fmt.Sprintf("msg %d", i)
				if string(d.Body) != want {
					return fmt.Errorf("delivery %d: body %q, want %q", i, d.Body, want)
				}
				if d.ConsumerTag != "h7-ctag" || d.RoutingKey != q.Name || d.Exchange != "" {
					return fmt.Errorf("delivery %d: tag %q rk %q ex %q", i, d.ConsumerTag, d.RoutingKey, d.Exchange)
				}
				if d.DeliveryTag != uint64(i+1) || d.Redelivered {
					return fmt.Errorf("delivery %d: delivery tag %d redelivered %v", i, d.DeliveryTag, d.Redelivered)
				}
				if d.ContentType != "text/plain" || d.DeliveryMode != 2 || d.Priority != 3 ||
					d.CorrelationId != fmt.Sprintf("c%d", i) || d.ReplyTo != "rq" ||
					d.MessageId != fmt.Sprintf("m%d", i) || !d.Timestamp.Equal(ts) ||
					d.Type != "t" || d.AppId != "h7" {
					return fmt.Errorf("delivery %d: properties changed: %+v", i, d)
				}
				if v, _ := d.Headers["i"].(int32); v != int32(i) {
					return fmt.Errorf("delivery %d: header i = %#v", i, d.Headers["i"])
				}
				nested, _ := d.Headers["nested"].(amqp.Table)
				if b, _ := nested["b"].(bool); !b || d.Headers["s"] != "x" {
					return fmt.Errorf("delivery %d: headers %#v", i, d.Headers)
				}
				if err := d.Ack(false); err != nil {
					return err
				}
			case <-time.After(5 * time.Second):
				return fmt.Errorf("only %d of %d deliveries arrived", i, n)
			}
		}
		if err := ch.Cancel("h7-ctag", false); err != nil {
			return err
		}
		q, err = ch.QueueInspect(q.Name)
		if err != nil {
			return err
		}
		if q.Messages != 0 || q.Consumers != 0 {
			return fmt.Errorf("after acks: %d messages, %d consumers", q.Messages, q.Consumers)
		}
		return nil
	})

	check("publisher confirms", func() error {
		c2, err := conn.Channel()
		if err != nil {
			return err
		}
		defer c2.Close()
		if err := c2.Confirm(false); err != nil {
			return err
		}
		confirms := c2.NotifyPublish(make(chan amqp.Confirmation, 20))
		for i := 0; i < 10; i++ {
			if err := c2.Publish("", "h7-go-q", false, false, amqp.Publishing{Body: []byte("c")}); err != nil {
				return err
			}
		}
		for i := 1; i <= 10; i++ {
			select {
			case c := <-confirms:
				if !c.Ack || c.DeliveryTag != uint64(i) {
					return fmt.Errorf("confirm %d: %+v", i, c)
				}
			case <-time.After(5 * time.Second):
				return fmt.Errorf("confirm %d missing", i)
			}
		}
		n, err := c2.QueuePurge("h7-go-q", false)
		if err != nil {
			return err
		}
		if n != 10 {
			return fmt.Errorf("purged %d, want 10", n)
		}
		return nil
	})

	check("several channels", func() error {
		var chans []*amqp.Channel
		for i := 0; i < 10; i++ {
			c, err := conn.Channel()
			if err != nil {
				return err
			}
			chans = append(chans, c)
		}
		for i, c := range chans {
			if err := roundTrip(c, fmt.Sprintf("ch%d", i)); err != nil {
				return fmt.Errorf("channel %d: %w", i, err)
			}
		}
		for _, c := range chans {
			if err := c.Close(); err != nil {
				return err
			}
		}
		return expectNoClose(connClosed, "connection")
	})

	check("idle with heartbeats", func() error {
		// amqp091-go drops the connection after 3 s without a frame at
		// heartbeat=2; the broker after 4 s without one from us.
		time.Sleep(7 * time.Second)
		if err := expectNoClose(connClosed, "connection"); err != nil {
			return err
		}
		if conn.IsClosed() {
			return fmt.Errorf("connection closed while idle")
		}
		return roundTrip(ch, "after idle")
	})

	check("soft error closes the channel only", func() error {
		_, err := ch.QueueDeclarePassive("h7-go-missing", false, false, false, false, nil)
		e, ok := err.(*amqp.Error)
		if !ok {
			return fmt.Errorf("passive declare of a missing queue: %v", err)
		}
		if e.Code != 404 || e.Reason != "NOT_FOUND - no queue 'h7-go-missing' in vhost '/'" || !e.Server {
			return fmt.Errorf("error %+v", e)
		}
		ce, err := waitClose(chClosed, "channel")
		if err != nil {
			return err
		}
		if ce.Code != 404 {
			return fmt.Errorf("channel NotifyClose got %+v", ce)
		}
		if !ch.IsClosed() {
			return fmt.Errorf("channel still open")
		}
		if conn.IsClosed() {
			return fmt.Errorf("connection closed by a soft error")
		}
		fresh, err := conn.Channel()
		if err != nil {
			return err
		}
		defer fresh.Close()
		return roundTrip(fresh, "after soft error")
	})

	check("unknown delivery tag is a channel error", func() error {
		c, err := conn.Channel()
		if err != nil {
			return err
		}
		closed := c.NotifyClose(make(chan *amqp.Error, 1))
		if err := c.Ack(99, false); err != nil {
			return err
		}
		e, err := waitClose(closed, "channel")
		if err != nil {
			return err
		}
		if e.Code != 406 || e.Reason != "PRECONDITION_FAILED - unknown delivery tag 99" {
			return fmt.Errorf("got %+v", e)
		}
		return expectNoClose(connClosed, "connection")
	})

	check("clean close reports no error", func() error {
		if _, err := ch.QueueDelete("h7-go-q", false, false, false); err == nil {
			return fmt.Errorf("closed channel accepted a method")
		}
		c2, err := conn.Channel()
		if err != nil {
			return err
		}
		if _, err := c2.QueueDelete("h7-go-q", false, false, false); err != nil {
			return err
		}
		if err := conn.Close(); err != nil {
			return err
		}
		select {
		case e, ok := <-connClosed:
			if ok && e != nil {
				return fmt.Errorf("NotifyClose after Close got %+v", e)
			}
		case <-time.After(5 * time.Second):
			return fmt.Errorf("NotifyClose not closed after Close")
		}
		if !conn.IsClosed() {
			return fmt.Errorf("IsClosed false after Close")
		}
		return nil
	})

	check("hard error closes the connection", func() error {
		c, err := dial(0, "h7-go-hard")
		if err != nil {
			return err
		}
		closed := c.NotifyClose(make(chan *amqp.Error, 1))
		chn, err := c.Channel()
		if err != nil {
			return err
		}
		// RabbitMQ answers a non-zero prefetch_size with a connection error.
		err = chn.Qos(1, 1, false)
		if err == nil {
			return fmt.Errorf("qos with prefetch_size accepted")
		}
		e, err := waitClose(closed, "connection")
		if err != nil {
			return err
		}
		if e.Code != 540 || e.Reason != "NOT_IMPLEMENTED - prefetch_size!=0 (1)" || !e.Server {
			return fmt.Errorf("got %+v", e)
		}
		if !c.IsClosed() {
			return fmt.Errorf("connection still open")
		}
		return nil
	})

	check("heartbeat from the server when the client asks none", func() error {
		// Heartbeat below 1 s takes the server's proposal (60 s).
		c, err := amqp.DialConfig(url(), amqp.Config{Heartbeat: 0})
		if err != nil {
			return err
		}
		defer c.Close()
		if c.Config.Heartbeat != 60*time.Second {
			return fmt.Errorf("heartbeat %v, want the server's 60s", c.Config.Heartbeat)
		}
		chn, err := c.Channel()
		if err != nil {
			return err
		}
		return roundTrip(chn, "x")
	})

	check("large body", func() error {
		c, err := dial(0, "h7-go-large")
		if err != nil {
			return err
		}
		defer c.Close()
		chn, err := c.Channel()
		if err != nil {
			return err
		}
		q, err := chn.QueueDeclare("", false, false, true, false, nil)
		if err != nil {
			return err
		}
		body := bytes.Repeat([]byte("0123456789abcdef"), 300000) // 4.8 MB, 37 frames
		if err := chn.Publish("", q.Name, false, false, amqp.Publishing{Body: body}); err != nil {
			return err
		}
		dels, err := chn.Consume(q.Name, "", true, false, false, false, nil)
		if err != nil {
			return err
		}
		select {
		case d := <-dels:
			if !bytes.Equal(d.Body, body) {
				return fmt.Errorf("body of %d bytes came back as %d bytes", len(body), len(d.Body))
			}
		case <-time.After(10 * time.Second):
			return fmt.Errorf("no delivery")
		}
		return nil
	})

	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}
