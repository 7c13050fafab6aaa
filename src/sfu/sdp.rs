//! The little SDP reading signaling needs beyond str0m: what an offer wants
//! to send and receive (checked against permissions before accepting it),
//! and trickle-ICE fragments (`application/trickle-ice-sdpfrag`, RFC 8840).

/// Media sections of an offer, by what the offerer will do with them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OfferedMedia {
    pub audio_send: usize,
    pub video_send: usize,
    pub audio_recv: usize,
    pub video_recv: usize,
}

impl OfferedMedia {
    pub fn parse(sdp: &str) -> OfferedMedia {
        let mut counts = OfferedMedia::default();
        let mut session_direction = "sendrecv";
        let mut sections: Vec<(&str, &str)> = Vec::new();
        for line in sdp.lines().map(str::trim) {
            if let Some(media) = line.strip_prefix("m=") {
                let kind = media.split(' ').next().unwrap_or("");
                sections.push((kind, ""));
            } else if let Some(direction) = line.strip_prefix("a=").filter(|a| is_direction(a)) {
                match sections.last_mut() {
                    Some(section) => section.1 = direction,
                    None => session_direction = direction,
                }
            }
        }
        for (kind, direction) in sections {
            let direction = if direction.is_empty() {
                session_direction
            } else {
                direction
            };
            let sends = matches!(direction, "sendrecv" | "sendonly");
            let receives = matches!(direction, "sendrecv" | "recvonly");
            let (send, recv) = match kind {
                "audio" => (&mut counts.audio_send, &mut counts.audio_recv),
                "video" => (&mut counts.video_send, &mut counts.video_recv),
                _ => continue,
            };
            *send += usize::from(sends);
            *recv += usize::from(receives);
        }
        counts
    }

    pub fn sends_any(&self) -> bool {
        self.audio_send + self.video_send > 0
    }

    pub fn receives_any(&self) -> bool {
        self.audio_recv + self.video_recv > 0
    }
}

fn is_direction(attribute: &str) -> bool {
    matches!(attribute, "sendrecv" | "sendonly" | "recvonly" | "inactive")
}

/// A trickle-ICE fragment: new candidates, or new credentials (an ICE restart).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SdpFrag {
    pub ufrag: Option<String>,
    pub pwd: Option<String>,
    /// Each `candidate:…` value, without the `a=`.
    pub candidates: Vec<String>,
    pub end_of_candidates: bool,
}

impl SdpFrag {
    pub fn parse(body: &str) -> SdpFrag {
        let mut frag = SdpFrag::default();
        for line in body.lines().map(str::trim) {
            let Some(attribute) = line.strip_prefix("a=") else {
                continue;
            };
            if let Some(ufrag) = attribute.strip_prefix("ice-ufrag:") {
                frag.ufrag = Some(ufrag.to_string());
            } else if let Some(pwd) = attribute.strip_prefix("ice-pwd:") {
                frag.pwd = Some(pwd.to_string());
            } else if attribute.starts_with("candidate:") {
                frag.candidates.push(attribute.to_string());
            } else if attribute == "end-of-candidates" {
                frag.end_of_candidates = true;
            }
        }
        frag
    }

    /// The server's side of an ICE restart: its new credentials and candidates.
    pub fn answer(ufrag: &str, pwd: &str, candidates: &[String]) -> String {
        let mut out = format!("a=ice-lite\r\na=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n");
        for candidate in candidates {
            out.push_str("a=");
            out.push_str(candidate.strip_prefix("a=").unwrap_or(candidate));
            out.push_str("\r\n");
        }
        out.push_str("a=end-of-candidates\r\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_directions_per_kind() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
                   m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendrecv\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n\
                   m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";
        let media = OfferedMedia::parse(sdp);
        assert_eq!(
            media,
            OfferedMedia {
                audio_send: 1,
                video_send: 1,
                audio_recv: 0,
                video_recv: 2
            }
        );
        assert!(media.sends_any() && media.receives_any());
    }

    #[test]
    fn session_level_direction_applies_to_sections_without_one() {
        let sdp = "v=0\na=recvonly\nm=audio 9 RTP/AVP 0\nm=video 9 RTP/AVP 96\na=inactive\n";
        let media = OfferedMedia::parse(sdp);
        assert_eq!(media.audio_recv, 1);
        assert_eq!(media.video_recv + media.video_send, 0);
    }

    #[test]
    fn parses_trickle_fragments() {
        let body = "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n\
                    a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0\r\n\
                    a=end-of-candidates\r\n";
        let frag = SdpFrag::parse(body);
        assert_eq!(frag.ufrag.as_deref(), Some("EsAw"));
        assert_eq!(frag.pwd.as_deref(), Some("P2uYro0UCOQ4zxjKXaWCBui1"));
        assert_eq!(frag.candidates.len(), 1);
        assert!(frag.candidates[0].starts_with("candidate:1387637174 1 udp"));
        assert!(frag.end_of_candidates);
        let answer = SdpFrag::answer(
            "u",
            "p",
            &["candidate:1 1 udp 1 127.0.0.1 7882 typ host".into()],
        );
        assert!(answer.contains("a=ice-ufrag:u\r\n") && answer.contains("a=candidate:1 1 udp"));
    }
}
