package classify_test

import (
	"fmt"
	"strings"

	"github.com/nzsecure-milter/nzsecure-milter/classify"
)

func ExampleClassify() {
	msg := "Subject: Budget [IN-CONFIDENCE:STAFF]\r\n" +
		"Content-Type: text/plain\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n" +
		"\r\n" +
		"The figures are [SEC=\r\nRET] until Friday. [RSVPDR]\r\n"
	res, err := classify.Classify(strings.NewReader(msg), classify.Options{})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Classification, res.Rank, res.RSVPDR)
	for _, m := range res.Markings {
		fmt.Printf("%s %q %s\n", m.Word, m.Endorsement, m.Where)
	}
	// Output:
	// SECRET 4 true
	// IN-CONFIDENCE "STAFF" subject
	// SECRET "" body
	// RSVPDR "" body
}

func ExampleScanner() {
	s, err := classify.NewScanner(classify.Options{ScanAttachments: true})
	if err != nil {
		panic(err)
	}
	// The milter writes the message as it arrives, in chunks of any size.
	for _, chunk := range []string{"Subject: hello\r\n\r\n", "[TOP ", "SECRET]\r\n"} {
		s.Write([]byte(chunk))
	}
	res, err := s.Close()
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Classification)
	// Output: TOP SECRET
}
