//! RTCP sender reports rebuilt from the SFU's `SenderReport` events, so that
//! GStreamer's rtpbin can line up each participant's audio and video by their
//! NTP wallclock (lip-sync). The CNAME groups a participant's streams.

use crate::sfu::NtpTime;

/// A compound RTCP packet: SR (no report blocks) + SDES with the CNAME.
pub fn sender_report(ssrc: u32, ntp: NtpTime, rtp_time: u32, cname: &str) -> Vec<u8> {
    let mut packet = Vec::with_capacity(64);
    // SR: V=2, RC=0, PT=200, length = 6 words after the first.
    packet.extend_from_slice(&[0x80, 200, 0, 6]);
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend_from_slice(&ntp.0.to_be_bytes());
    packet.extend_from_slice(&rtp_time.to_be_bytes());
    packet.extend_from_slice(&0u32.to_be_bytes()); // sender's packet count (unknown here)
    packet.extend_from_slice(&0u32.to_be_bytes()); // sender's octet count

    // SDES: one chunk (SSRC, CNAME item, END), padded to a 32-bit boundary.
    let cname = &cname.as_bytes()[..cname.len().min(255)];
    let mut chunk = Vec::with_capacity(8 + cname.len());
    chunk.extend_from_slice(&ssrc.to_be_bytes());
    chunk.push(1); // CNAME
    chunk.push(cname.len() as u8);
    chunk.extend_from_slice(cname);
    chunk.push(0); // END
    while chunk.len() % 4 != 0 {
        chunk.push(0);
    }
    let words = (chunk.len() / 4) as u16;
    packet.extend_from_slice(&[0x81, 202]);
    packet.extend_from_slice(&words.to_be_bytes());
    packet.extend_from_slice(&chunk);
    packet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_of_the_compound_packet() {
        let packet = sender_report(0x11223344, NtpTime(0x0102030405060708), 90000, "PA_abc");
        assert_eq!(&packet[..4], &[0x80, 200, 0, 6]);
        assert_eq!(&packet[4..8], &[0x11, 0x22, 0x33, 0x44]);
        assert_eq!(&packet[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            u32::from_be_bytes(packet[16..20].try_into().unwrap()),
            90000
        );
        let sdes = &packet[28..];
        assert_eq!(sdes[1], 202);
        let words = u16::from_be_bytes([sdes[2], sdes[3]]) as usize;
        assert_eq!(sdes.len(), 4 + 4 * words);
        assert_eq!(&sdes[8..10], &[1, 6]);
        assert_eq!(&sdes[10..16], b"PA_abc");
        assert_eq!(packet.len() % 4, 0);
    }
}
