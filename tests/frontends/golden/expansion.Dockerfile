FROM scratch
ARG P=/usr/local/bin/app.tar.gz E=
ENV S1=${P##*/} S2=${P%%.*} S3=${P#*/} S4=${P%.*}
ENV D1=${E:-empty} D2=${E-set} D3=${U:-unset} D4=${U-unset}
ENV A1=${E:+alt} A2=${E+alt} A3=${P:+alt} A4=${U+alt}
ENV R1=${P/local/opt} R2=${P//[.]/_} R3='$P' R4="$P" R5=\$P
WORKDIR ${P%/*}
USER ${U:-nobody}
EXPOSE ${PORT:-80}
ENV PORTS="8080 9090/udp"
EXPOSE $PORTS
